# Dry Lab — the commands a user needs. See README.md.
# Everything is installed by these rules: Python packages from requirements.lock into .venv,
# system packages by scripts/install-system-deps.sh (skipped with a message where not root).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.drylab-installed
SYSSTAMP := .system-deps-installed

.PHONY: demo test bench lab hub lint system-deps venv clean help

help:
	@echo "make demo   - build a cohort, the course, a simulated class, grade it, open the report paths"
	@echo "make test   - install everything and run the test suite (what CI runs)"
	@echo "make bench  - speed / memory benchmarks (ratios and figures, not pass/fail)"
	@echo "make lab    - JupyterLab on the released course, with the nbgrader extensions"
	@echo "make hub    - a local JupyterHub try-out on http://127.0.0.1:8000"
	@echo "make lint   - ruff on code and notebooks"

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

system-deps: $(SYSSTAMP)

$(SYSSTAMP): scripts/install-system-deps.sh deploy/package.json
	bash scripts/install-system-deps.sh
	@touch $@

demo: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/drylab demo --out demo

test: venv system-deps
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/ruff check .
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: venv system-deps
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m benchmarks $(BENCH_ARGS)

lab: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/drylab lab

hub: venv system-deps
	PATH="$(CURDIR)/$(BIN):$$PATH" bash deploy/single-host/run-hub.sh

lint: venv
	$(BIN)/ruff check .

clean:
	rm -rf demo bench-out test-artifacts .pytest_cache
