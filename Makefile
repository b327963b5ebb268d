# The two commands a reader needs: `make book` and `make test`. `make help` lists all.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOKS := notebooks
# Notebooks executed side by side: one per core (each runs PyTorch on one thread).
JOBS ?= $(shell nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 2)
# Threads that wait sleep instead of spinning: spinning OpenMP threads of several
# processes starve each other (training ran 10-70x slower beside other PyTorch work).
export OMP_WAIT_POLICY := PASSIVE
# nbval runs the notebooks on another instruction set than the book build, so that every
# run checks each assert on two: avx2 (most laptops) where the CPU has more, else default.
NBVAL_CPU_CAPABILITY = $(shell $(BIN)/python -c "import torch; \
	print('default' if torch.backends.cpu.get_cpu_capability() in ('AVX2', 'DEFAULT') \
	else 'avx2')" 2>/dev/null || echo default)

.PHONY: help venv execute book test test-unit lint test-notebooks test-book test-browser browser bench \
	bench-alignment lab clean

help:
	@echo "make book        build the HTML book, executing every notebook (_build/html)"
	@echo "make test        everything that must pass: lint, unit tests, notebooks, strict book build, browser tests"
	@echo "make test-unit   the unit tests only (no book, no chapter notebooks)"
	@echo "make bench       time each notebook idle and beside 2 busy PyTorch processes (LOAD=2)"
	@echo "make bench-alignment  chapter 6's attention-vs-gold-alignment over 8 training seeds (~20 min)"
	@echo "make browser     find or install the Chromium the browser tests drive (make test does it first)"
	@echo "make lab         JupyterLab on the notebooks; prints the URL to open (LAB_PORT=8888)"
	@echo "make clean       remove the built book and the execution cache"

# The virtual environment, (re)made when requirements.txt or pyproject.toml change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

# The execution cache is keyed on each notebook's code only: when the package (or the
# requirements) change, drop it, or the book would show outputs of the old package.
CACHE_STAMP := _build/.cache-matches-src
$(CACHE_STAMP): $(shell find src/attnbook -name '*.py') requirements.txt
	rm -rf .jupyter_cache
	mkdir -p _build && touch $@

# Every notebook the book shows, executed into the cache first, JOBS at a time, with
# jupyter-cache's own worker; the build then only reads the cache. Cell limit: CELL_TIMEOUT.
CELL_TIMEOUT := $(shell sed -n 's/^  timeout: *\([0-9]*\).*/\1/p' _config.yml)
execute: $(STAMP) $(CACHE_STAMP)
	$(BIN)/python book/_ext/execute_notebooks.py --timeout $(CELL_TIMEOUT) --jobs $(JOBS) \
	  $(NOTEBOOKS)/[0-9][0-9]_*.ipynb $(NOTEBOOKS)/solutions/*.ipynb

book: execute
	$(BIN)/jupyter-book build . --builder html
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

# The browser first: when no Chromium can be found or installed, fail at once, not after
# the notebooks and the book have run.
test: browser lint test-unit test-notebooks test-book test-browser

lint: $(STAMP)
	$(BIN)/ruff check src tests bench $(NOTEBOOKS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests -m "not book and not browser" -n $(JOBS)

# Every notebook, solutions included, top to bottom; outputs are not compared (lax).
# One notebook per worker (--dist loadfile: nbval's cells share the notebook's kernel),
# the longest first (as `execute` orders them), on the other instruction set
# (NBVAL_CPU_CAPABILITY above). Every figure is checked as it is shown, and one that does
# not read at page width fails its cell (tests/figure_checks.py, which each kernel loads
# through tests/figure_hook.py).
test-notebooks: $(STAMP)
	ATEN_CPU_CAPABILITY=$(NBVAL_CPU_CAPABILITY) ATTNBOOK_CHECK_FIGURES=raise \
	  PYTHONSTARTUP=$(CURDIR)/tests/figure_hook.py $(BIN)/python -m pytest -q --nbval-lax \
	  --nbval-current-env --nbval-cell-timeout=$(CELL_TIMEOUT) -p no:cacheprovider \
	  -n $(JOBS) --dist loadfile --no-loadscope-reorder \
	  $$($(BIN)/python book/_ext/execute_notebooks.py --order $(NOTEBOOKS)/*.ipynb \
	     $(NOTEBOOKS)/solutions/*.ipynb)

# The book with warnings as errors (-W), nitpicky references (-n), all problems listed.
# Then the prose of every page against the numbers that page printed.
test-book: execute
	$(BIN)/jupyter-book build . --builder html -W -n --keep-going
	$(BIN)/python -m pytest -q tests -m book

# Headless Chromium on every page, network blocked; reuses test-book's _build/html when current.
# The JupyterLab test runs in a pytest process of its own: Playwright's sync API cannot
# start a second time while the book tests' browser is open in the same process.
test-browser: $(STAMP) browser
	$(BIN)/python -m pytest -q tests -m browser --ignore=tests/test_lab_browser.py
	$(BIN)/python -m pytest -q tests/test_lab_browser.py -m browser
	@echo "Screenshots of every page: $(CURDIR)/_build/screenshots/"

# Each notebook idle, then beside LOAD busy PyTorch processes (LOAD=0: idle only).
LOAD ?= 2
bench: $(STAMP)
	$(BIN)/python bench/run.py --load $(LOAD)

bench-alignment: $(STAMP)
	$(BIN)/python bench/alignment_seeds.py

# A Chromium for the browser tests: the system's ($$CHROMIUM, chromium, chromium-browser,
# google-chrome), else as root Debian's (apt-get), else Playwright's own; else one message
# saying what was tried and what to run, and make stops.
browser: $(STAMP)
	@tests/provision_chromium.sh $(BIN)

# JupyterLab on localhost:LAB_PORT with a fresh token; as root (containers, cloud notebooks)
# with --allow-root. In a container, make lab LAB_ARGS=--ip=0.0.0.0 and publish the port.
# The book's settings (.jupyter/lab/settings/overrides.json) turn off the "Jupyter news?"
# pop-up, which would cover the first exercise's hint; news_url=None fetches none.
LAB_PORT ?= 8888
LAB_ARGS ?=
lab: $(STAMP)
	@export JUPYTER_TOKEN=$${JUPYTER_TOKEN:-$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(24))')}; \
	echo "JupyterLab on $(NOTEBOOKS)/: open http://localhost:$(LAB_PORT)/lab?token=$$JUPYTER_TOKEN"; \
	echo "(Ctrl-C twice to stop it)"; \
	exec $(BIN)/jupyter lab --no-browser --port=$(LAB_PORT) --ServerApp.port_retries=0 \
	  --ServerApp.root_dir=$(NOTEBOOKS) $(if $(filter 0,$(shell id -u)),--allow-root) \
	  --LabApp.app_settings_dir=$(CURDIR)/.jupyter/lab/settings --LabApp.news_url=None $(LAB_ARGS)

clean:
	rm -rf _build .jupyter_cache
