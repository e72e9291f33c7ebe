"""Writing the pack's files into a folder all or nothing: each file is written beside its final
name first and renamed only when every one of them is complete, so a failure (a full disk, a
folder that cannot be written) leaves no half-written pack behind."""

import os
import re
import secrets
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from dashboard.report.pack import MonitoringPack

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_stem(study_id: str, cut_id: int | None) -> str:
    """``<study>-pack-<cut id>``: the file name of a pack without its extension."""
    return _UNSAFE.sub("_", f"{study_id}-pack-{cut_id if cut_id is not None else 'none'}")


def pack_stem(pack: MonitoringPack) -> str:
    return file_stem(pack.study.study_id, pack.cut.id if pack.cut else None)


def check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and prove a file can be written there (raises OSError): a bad
    ``--out`` is found before the pack is built, not after."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass


@contextmanager
def staged_files(folder: Path, contents: Mapping[str, bytes]) -> Iterator[list[Path]]:
    """Write ``contents`` (file name -> bytes) under temporary names in ``folder``; the block runs
    with the final paths and, if it ends without an exception, the files are renamed to them.
    Otherwise, or if a rename fails, every file of the set is removed."""
    temporary: list[tuple[Path, Path]] = []
    published: list[Path] = []
    try:
        for name, data in contents.items():
            # Opened as a new file ("x"), not with mkstemp: the file gets the permissions the
            # user's umask gives, as any file they write would.
            staged = folder / f".{name}.{secrets.token_hex(6)}.part"
            with staged.open("xb") as file:
                temporary.append((staged, folder / name))
                file.write(data)
        yield [final for _, final in temporary]
        for staged_path, final in temporary:
            os.replace(staged_path, final)
            published.append(final)
    except BaseException:
        for staged_path, _ in temporary:
            staged_path.unlink(missing_ok=True)
        for final in published:
            final.unlink(missing_ok=True)
        raise
