"""A command run as a process of its own, timed and its peak memory measured.

Linux counts a process's peak RSS (``ru_maxrss``) from before its ``exec``: a child started from a
large process (the benchmark, holding the study it just exported) starts with the parent's peak,
and ``os.wait4`` then reports the parent's size, not the command's (2,402 MB for both imports of
one run, whatever they used). So the command is started by a small launcher (a bare Python), which
waits for it and hands back its wall time and its own ``ru_maxrss``.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

# Runs argv[2:], writes {"wall_s", "rss_mb", "code"} to argv[1]; a few MB of its own.
_LAUNCHER = """
import json, os, subprocess, sys, time
start = time.perf_counter()
process = subprocess.Popen(sys.argv[2:])
_pid, status, usage = os.wait4(process.pid, 0)
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as out:
    json.dump({"wall_s": wall, "rss_mb": usage.ru_maxrss / 1024,
               "code": os.waitstatus_to_exitcode(status)}, out)
"""


def run_measured(command: list[str], output: IO[bytes] | int | None = None) -> dict[str, float]:
    """Run ``command`` (its output to ``output``); its wall seconds (``wall_s``), peak RSS in MB
    (``rss_mb``, kilobytes on Linux / 1024) and exit code (``code``)."""
    with tempfile.TemporaryDirectory(prefix="bench-child-") as folder:
        figures = Path(folder) / "figures.json"
        subprocess.run(
            [sys.executable, "-c", _LAUNCHER, str(figures), *command],
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
            check=True,
        )
        measured: dict[str, float] = json.loads(figures.read_text())
    return measured
