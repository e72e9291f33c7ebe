"""The dashboard's server as `make run` starts it: Streamlit's own command line, in a process that
has imported the app's modules before the server answers.

Streamlit imports nothing of an app until the first session runs its script: the first visitor
after a start waits for pandas, altair, SQLAlchemy, scipy and every view the page needs (6 s and
more on a busy 2-core machine, issue #19), on top of the page itself. Importing them here, before
the server listens, moves that wait to the start, where nobody is looking at a spinner. Nothing is
read from the database: what a page shows depends on the viewer's rights, which only its own run
knows. Run: ``python -m dashboard.ui.serve run dashboard/app.py [streamlit options]``.
"""

import logging
import sys

from dashboard.ui.warm_up import app_scripts, import_all, imported_modules


def main() -> None:
    # Each st.cache_data decorated outside a running server says "No runtime found": harmless (a
    # cache's storage is made when it is first called, in a session), and not worth a log line.
    caching = logging.getLogger("streamlit.runtime.caching.cache_data_api")
    level = caching.level
    caching.setLevel(logging.ERROR)
    try:
        import_all(imported_modules(app_scripts()))
    finally:
        caching.setLevel(level)
    from streamlit.web.cli import main as streamlit_cli

    sys.argv = ["streamlit", *sys.argv[1:]]
    streamlit_cli()


if __name__ == "__main__":
    main()
