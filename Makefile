# Everything runs in a project-local virtual environment that `make install` creates.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
JOBS ?= 2

.PHONY: install demo test unit lint bench bench-ports bench-parse clean ft-python ft-python-tsan

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Scan the bundled example extension and write every report format into demo-report/; it has
# real problems, so exit status 1 is expected.
demo: install
	mkdir -p demo-report
	$(BIN)/gilaudit scan examples/spamcache --no-progress \
	    --json demo-report/report.json --html demo-report/report.html \
	    --sarif demo-report/report.sarif --junit demo-report/junit.xml \
	    --markdown demo-report/summary.md --format text; test $$? -eq 1

test: lint unit

unit: install
	$(BIN)/python -m pytest -n $(JOBS) -q

lint: install
	$(BIN)/ruff check src tests bench tools
	$(BIN)/mypy

# A free-threaded CPython 3.13 built from Debian's source package, cached (see tools/ft-python.sh);
# prints the interpreter's path. The tests find it there.
ft-python:
	@bash tools/ft-python.sh

# The same with ThreadSanitizer, in a prefix of its own.
ft-python-tsan:
	@bash tools/ft-python.sh --tsan

bench: install
	$(BIN)/python bench/bench_scan.py
	$(BIN)/python bench/bench_stress.py
	ft="$$(bash tools/ft-python.sh)" && $(BIN)/python bench/bench_stress.py --python "$$ft"
	$(BIN)/python bench/bench_dashboard.py

# Recall of the hazard findings on real free-threading ports (bench/ports.toml): each package's
# release before and after its port, and CPython's Modules/ from Debian's 3.11 and 3.13; the
# truth derived from each port is written to ~/.cache/gilaudit/bench-ports/truth/.
bench-ports: install
	$(BIN)/python bench/bench_ports.py --misses

# Parse fidelity on real C++ and binding projects (bench/parse.toml): the share of translation
# units that parse with no error, and the errors and warnings, before issue 15 and now.
bench-parse: install
	$(BIN)/python bench/bench_parse.py

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
