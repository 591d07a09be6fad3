# MiWei: `make run` starts a demo collector and agent; `make test` runs every test;
# `make bench` measures and writes BENCHMARKS.md; `make dist` builds the packages.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint clean bench dist

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "MiWei needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)

# setup.py compiles agent/content/_winnow.c in place (optional: without a compiler the numpy path runs)
NATIVE := setup.py agent/content/_winnow.c

$(VENV)/.run-installed: $(BIN)/python setup.cfg pyproject.toml $(NATIVE)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[server]'
	touch $@

$(VENV)/.dev-installed: $(BIN)/python setup.cfg pyproject.toml $(NATIVE)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,postgres]'
	touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(BIN)/python -m server.demo --dir var

# pytest-xdist workers: the tests that share the machine (tests/conftest.py: SERIAL_*) run one at a
# time on one of them while the rest spread over all. Three on CI's two cores: the serial worker
# mostly waits on the processes its tests start, so a third keeps both cores busy; more only
# queue for the CPU. `make test TEST_WORKERS=0` runs in one process, as before.
TEST_WORKERS ?= 3

test: $(VENV)/.dev-installed
	MIWEI_RELIABILITY_DOC=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

$(VENV)/.bench-installed: $(VENV)/.dev-installed
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,postgres,bench]'
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python -m bench

# the offline wheelhouse (this platform, aarch64, Windows) and the two .debs, in dist/ (packaging/build.py)
dist: $(BIN)/python
	$(BIN)/python packaging/build.py --out dist

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check agent rules server tests bench

clean:
	rm -rf $(VENV) var .pytest_cache
