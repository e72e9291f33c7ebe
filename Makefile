# Two commands do all the set-up: `make run` and `make test` (see README.md).
# Needs only Python 3.11+, pip and make: uv is used where present, else bootstrapped with pip into
# .tools/ (a tool venv of its own, since a system pip may refuse global installs; where the venv
# module cannot give it pip, e.g. Debian without python3-venv, `pip install --target .tools`).

export UV_PYTHON_DOWNLOADS := never
PYTHON ?= python3
PORT ?= 8501
# The interface `make run` listens on: this machine only. `make run ADDRESS=0.0.0.0` serves a
# network (configure sign-in first: README, Sign-in and access).
ADDRESS ?= 127.0.0.1
# The embedded database `make run` creates and serves (`make run DB=/tmp/x.db` overrides it).
DB := data/study-monitor.db

UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := .tools/bin/uv
endif

.PHONY: run test lint typecheck pytest sync demo clean bench

# First a venv with pip; where the interpreter cannot make one (no ensurepip: Debian/Ubuntu without
# python3-venv), pip's --target into the same folder, which PEP 668 ("externally managed") allows
# and which needs no venv: uv is one binary, put in .tools/bin/ either way.
$(UV):
	@rm -rf .tools
	@if $(PYTHON) -m venv .tools >/dev/null 2>&1 && .tools/bin/python -m pip --version >/dev/null 2>&1; then \
	  echo "Installing uv into the tool venv .tools/"; \
	  .tools/bin/python -m pip install --quiet --disable-pip-version-check uv; \
	else \
	  echo "$(PYTHON) cannot make a venv with pip (python3-venv missing?): pip install --target .tools uv"; \
	  rm -rf .tools; \
	  PIP_USER=0 $(PYTHON) -m pip install --quiet --disable-pip-version-check --target .tools uv; \
	fi
	@test -x $@ || { echo "uv was not installed at $@" >&2; exit 1; }

# The project environment in .venv/ (as uv makes it), exactly as locked.
.venv/bin/study-monitor: $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --python $(PYTHON)
	@touch $@

sync: .venv/bin/study-monitor

# The embedded SQLite database with the NCT06466850 demo study, created only if absent (set
# DATABASE_URL to use another database: then nothing is created here).
$(DB): | .venv/bin/study-monitor
	.venv/bin/study-monitor demo --db sqlite:///$(abspath $(DB))

demo: .venv/bin/study-monitor
	.venv/bin/study-monitor demo

# Streamlit's own command line, in a process that imports the app's modules before it listens
# (dashboard/ui/serve.py): the first visitor after a start does not wait for them.
run: .venv/bin/study-monitor
	@if [ -z "$$DATABASE_URL" ]; then $(MAKE) --no-print-directory $(DB); fi
	DATABASE_URL="$${DATABASE_URL:-sqlite:///$(abspath $(DB))}" \
	  .venv/bin/python -m dashboard.ui.serve run dashboard/app.py --server.port $(PORT) \
	  --server.address $(ADDRESS)

# ruff, then the import direction (the contracts of [tool.importlinter] in pyproject.toml).
lint: .venv/bin/study-monitor
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports --no-cache

typecheck: .venv/bin/study-monitor
	.venv/bin/mypy

# The suite on SQLite; then, where TEST_POSTGRES_URL names a PostgreSQL server
# (postgresql+psycopg://postgres@127.0.0.1:PORT/postgres; .ci/run starts one), the suite again on
# new databases there: every query, page (AppTest), import, pack and command on PostgreSQL. The
# real-browser tests run once, on SQLite: what Chromium draws does not depend on the database
# (and the two passes must fit CI's time). Both run even if the first fails; each prints its time.
pytest: .venv/bin/study-monitor
	@status=0; \
	start=$$(date +%s); env -u TEST_POSTGRES_URL .venv/bin/pytest || status=1; \
	echo "pytest on SQLite: $$(( $$(date +%s) - start )) s"; \
	if [ -n "$$TEST_POSTGRES_URL" ]; then \
	  start=$$(date +%s); .venv/bin/pytest -m "not browser" || status=1; \
	  echo "pytest on PostgreSQL: $$(( $$(date +%s) - start )) s"; \
	fi; \
	exit $$status

test: lint typecheck pytest

clean:
	rm -rf .venv .tools .mypy_cache .ruff_cache .pytest_cache tests/artifacts

# The speed benchmark (issue #8): prints a table and writes benchmarks/results.json.
bench: .venv/bin/study-monitor
	.venv/bin/python benchmarks/run.py
