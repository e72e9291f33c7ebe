# Two commands do all the set-up: `make run` and `make test` (see README.md).
# Needs only Python 3.11+, pip and make: uv is used where present, else bootstrapped with pip into a
# tool venv of its own (.tools/), since a system pip may refuse global installs.

export UV_PYTHON_DOWNLOADS := never
PYTHON ?= python3
PORT ?= 8501
DB := data/study-monitor.db

UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := .tools/bin/uv
endif

.PHONY: run test lint typecheck pytest sync demo clean bench

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv

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

run: .venv/bin/study-monitor
	@if [ -z "$$DATABASE_URL" ]; then $(MAKE) --no-print-directory $(DB); fi
	.venv/bin/streamlit run dashboard/app.py --server.port $(PORT)

lint: .venv/bin/study-monitor
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck: .venv/bin/study-monitor
	.venv/bin/mypy

# The suite on SQLite; then, where TEST_POSTGRES_URL names a PostgreSQL server
# (postgresql+psycopg://postgres@127.0.0.1:PORT/postgres; .ci/run starts one), the same suite again
# on new databases there. Both run even if the first fails; each prints its time.
pytest: .venv/bin/study-monitor
	@status=0; \
	start=$$(date +%s); env -u TEST_POSTGRES_URL .venv/bin/pytest || status=1; \
	echo "pytest on SQLite: $$(( $$(date +%s) - start )) s"; \
	if [ -n "$$TEST_POSTGRES_URL" ]; then \
	  start=$$(date +%s); .venv/bin/pytest || status=1; \
	  echo "pytest on PostgreSQL: $$(( $$(date +%s) - start )) s"; \
	fi; \
	exit $$status

test: lint typecheck pytest

clean:
	rm -rf .venv .tools .mypy_cache .ruff_cache .pytest_cache tests/artifacts

# The speed benchmark (issue #8): prints a table and writes benchmarks/results.json.
bench: .venv/bin/study-monitor
	.venv/bin/python benchmarks/run.py
