# RNN course: `make demo` and `make test` are the two commands a new machine needs (see README).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The assignments' source folders (all of them, or those named in $RNNCOURSE_ASSIGNMENTS).
SOURCES = $(shell $(BIN)/python -c "from autograder.config import ASSIGNMENTS as A; print(*('source/' + a for a in A))")
# nbgrader runs `alembic` from PATH, so the venv's bin comes first for every recipe.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: help venv release demo grade bench test lint lab torch system-deps clean

help:
	@echo "make demo     create .venv, generate release/, autograde the example submissions, print grades"
	@echo "make test     full test suite: unit, release, grading pipeline, nbval of every notebook"
	@echo "make lab      JupyterLab, opened on the course map (assignments are in release/)"
	@echo "make release  regenerate release/ from source/ with nbgrader generate_assignment"
	@echo "make grade    autograde every submitted/<student>/<assignment> in parallel, print grades"
	@echo "make bench    run every benchmark; write benchmarks/RESULTS.md and the README's table"
	@echo "make torch    install the CPU build of PyTorch for the cross-check tests (optional)"
	@echo "make lint     ruff over the Python code and notebooks"
	@echo "make system-deps  Debian packages for the browser and PostgreSQL tests (chromium, postgresql)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

venv: $(STAMP)

# Students get release/ from git; this rebuilds it from source/ (tests fail if it is stale).
release: $(STAMP)
	$(BIN)/python -m autograder.grading release

demo: release
	$(BIN)/python -m autograder.demo

# The instructor's grading run: submissions in submitted/, grades into the gradebook of
# nbgrader_config.py (GRADE_ARGS, e.g. "02_forward_pass --workers 4", is passed on).
grade: $(STAMP)
	$(BIN)/python -m autograder.grade $(GRADE_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/00_course_map.ipynb

# Debian's chromium (browser test) and postgresql (gradebook on PostgreSQL); the tests that need them
# skip with a reason where they are missing. Needs root or sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system-deps:
	@if command -v chromium >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "chromium and postgresql are installed"; \
	else \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium postgresql; \
	fi

torch: $(STAMP)
	$(BIN)/python -m pip install --quiet torch==2.13.0

test: $(STAMP)
	$(BIN)/python -m pytest tests
	$(BIN)/python -m autograder.companions
	$(BIN)/python -m pytest --nbval-lax -p no:cacheprovider -n auto --dist loadscope $(SOURCES) notebooks

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf submitted autograded feedback grading_records gradebook.db .nbgrader.log build artifacts
