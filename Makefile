# The only entry points of the report. `make book` and `make test` do all set-up themselves.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FMNIST := /usr/share/datasets/fashion-mnist
# The exact versions the nbval references were made with (`make constraints` rewrites it).
CONSTRAINTS := constraints.txt
# Extras of `make venv` (dev: tests and book; paper: torchvision for data_source=torchvision).
EXTRAS ?= dev
# torch must be the CPU build (the references are CPU numbers). Where the machine's pip does not
# serve it, give an index that does: make venv TORCH_INDEX=<url of a CPU wheel index>.
TORCH_INDEX ?=

# `make book` and `make smoke` execute the chapters in parallel, this many at a time (one per
# core by default; `make book JOBS=1` for one at a time).
JOBS ?= $(shell nproc 2>/dev/null || echo 1)

NB_SRC := $(sort $(wildcard notebooks/*.md))
STEMS := $(notdir $(basename $(NB_SRC)))
# `make -jN` starts the chapters in this order: the longest full runs first (measured on the
# 2-core machine, README), so that the short ones fill the cores at the end; the rest follow.
BOOK_FIRST := 03_peck_bounds 02_fisher_jacobian 05_hessian_crossholder 04_persistence_pathkernel 01_warwick_rnn
BOOK_ORDER := $(foreach n,$(BOOK_FIRST),$(filter $(n),$(STEMS))) $(filter-out $(BOOK_FIRST),$(STEMS))
EXECUTED := $(BOOK_ORDER:%=book/_executed/%.ipynb)
SMOKED := $(STEMS:%=.cache/smoke/%.ipynb)
DEPS := $(STEMS:%=.cache/deps/%.d)
BOOK_SRC := $(wildcard book/*.md book/*.yml book/*.bib book/_static/* book/_ext/*.py) analysis/scorecard.py analysis/plots/scorecard.py
# Written by every successful build (index.html is a redirect Jupyter Book writes only once).
BOOK_STAMP := book/_build/html/.built
MATHJAX := book/_mathjax/mathjax
# What a page must not load (a script from another host, a CDN such as thebe's or MathJax's).
NETWORK_JS := <script[^>]+src="(https?:)?//|unpkg\.com|cdn\.jsdelivr\.net

.PHONY: help venv constraints data book smoke test lint unit nbval regen chapter bench gpu-check mutants clean

help:
	@echo "make book     execute every chapter (profile full, JOBS=$(JOBS) at a time) and build the HTML book"
	@echo "make test     ruff, unit/property tests, nbval on the smoke references"
	@echo "make smoke    execute every chapter with profile smoke into .cache/smoke/"
	@echo "make chapter NB=<stem> PARAMS='-p name value ...'   rerun one chapter"
	@echo "make regen    rewrite tests/notebooks/ (the nbval references)"
	@echo "make bench    cost ratios (CH, HR, Peck, persistence, path kernel) and each chapter's time and peak memory (.cache/bench.json)"
	@echo "make venv [EXTRAS=dev,paper] [TORCH_INDEX=url]   the venv, at the versions of constraints.txt"
	@echo "make constraints   rewrite constraints.txt from .venv (after a deliberate upgrade)"
	@echo "make gpu-check  smoke runs on a GPU (-p device cuda) vs the CPU references (skips without a GPU)"
	@echo "make mutants  mutation benchmark of the tests (.cache/mutants.json; not part of make test)"

venv: $(STAMP)
$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c $(CONSTRAINTS) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) 'torch==2.13.0'
	$(PY) -c 'import sys, torch; sys.exit(None if torch.version.cuda is None else "error: torch " + torch.__version__ + " is a CUDA build; the report pins the CPU build 2.13.0+cpu: make venv TORCH_INDEX=<a CPU wheel index>")'
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e '.[$(EXTRAS)]'
	touch $@

# Rewrite the constraints from the current venv (after a deliberate upgrade; then `make regen`).
constraints: | $(STAMP)
	{ echo "# pip constraints: the exact versions the nbval references were made with."; \
	  echo "# Written by \`make constraints\` (pip freeze of .venv, without the project)."; \
	  $(PY) -m pip freeze --exclude-editable | grep -v '^analysis[= @]'; } > $(CONSTRAINTS)

# Debian's package of the official Fashion-MNIST files (installed only when absent).
data:
	@if [ ! -e $(FMNIST)/train-images-idx3-ubyte.gz ] && [ ! -e $(FMNIST)/train-images-idx3-ubyte ]; then \
	  if command -v apt-get >/dev/null; then \
	    SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	  else echo "warning: no apt-get; Fashion-MNIST chapters need data_source=torchvision or a folder"; fi; \
	fi

# Each chapter depends on its source, pyproject.toml and the analysis modules it imports,
# transitively (.cache/deps/<stem>.d, written by `analysis.run --deps`; rewritten whenever one
# of those files changes). Cached artefacts inside a run are kept honest by analysis.cache.
ifneq ($(filter book smoke book/% .cache/smoke/%,$(MAKECMDGOALS)),)
include $(DEPS)
endif
.cache/deps/%.d: notebooks/%.md | $(STAMP)
	@mkdir -p $(@D)
	$(PY) -m analysis.run --deps $< "book/_executed/$*.ipynb .cache/smoke/$*.ipynb $@" > $@.tmp
	mv $@.tmp $@

# A failed chapter stops the build (make starts no new chapter; those running finish) and says
# which one failed and where its partial notebook is.
CHAPTER_FAILED = { echo "error: chapter $* failed; its partial notebook: $(@:.ipynb=.failed.ipynb)" >&2; exit 1; }

book/_executed/%.ipynb: notebooks/%.md pyproject.toml | $(STAMP) data
	ANALYSIS_RECORDS=book/_executed/records $(PY) -m analysis.run $< $@ -p profile full || $(CHAPTER_FAILED)

# MathJax from the venv (the django-static-mathjax wheel, a dev dependency): the book renders
# formulas with no network.
$(MATHJAX)/tex-chtml.js: $(STAMP)
	rm -rf $(MATHJAX) && mkdir -p $(MATHJAX)
	cp -R "$$($(PY) -c 'import mathjax, pathlib; print(pathlib.Path(mathjax.__file__).parent / "static" / "mathjax" / "es5")')"/. $(MATHJAX)/
	test -f $@ && touch $@

$(BOOK_STAMP): $(EXECUTED) $(BOOK_SRC) $(MATHJAX)/tex-chtml.js
	$(PY) -m analysis.scorecard book/_executed/records book/_executed --toc book/_toc.yml
	$(VENV)/bin/jupyter-book build book -W --keep-going
	@if grep -rqE '$(NETWORK_JS)' book/_build/html --include='*.html'; then \
	  echo "error: the book loads code from the network:"; \
	  grep -rhoE '$(NETWORK_JS)[^"]*' book/_build/html --include='*.html' | sort -u; exit 1; fi
	touch $@
	@echo "the book: $(CURDIR)/book/_build/html/index.html"

# In parallel by default (JOBS); each chapter's output is printed in one block when it ends.
book:
	@$(MAKE) --no-print-directory -j$(JOBS) --output-sync=target $(BOOK_STAMP)

.cache/smoke/%.ipynb: notebooks/%.md pyproject.toml | $(STAMP) data
	ANALYSIS_RECORDS=.cache/smoke/records $(PY) -m analysis.run $< $@ -p profile smoke || $(CHAPTER_FAILED)

smoke:
	@$(MAKE) --no-print-directory -j$(JOBS) --output-sync=target $(SMOKED)

chapter: | $(STAMP) data
	@test -n "$(NB)" || { echo "usage: make chapter NB=<stem> PARAMS='-p name value ...'"; exit 2; }
	ANALYSIS_RECORDS=.cache/runs/records $(PY) -m analysis.run notebooks/$(NB).md .cache/runs/$(NB).ipynb -p profile full $(PARAMS)

lint: | $(STAMP)
	$(VENV)/bin/ruff check analysis tests

unit: | $(STAMP) data
	$(VENV)/bin/pytest tests -q --ignore=tests/notebooks

# One pytest per reference, JOBS at a time (each chapter kernel uses one thread, as when the
# references were made), the longest first; any failure fails the target.
NB_REFS := $(notdir $(basename $(wildcard tests/notebooks/*.ipynb)))
NB_FIRST := 03_peck_bounds 06_synthesis 04_persistence_pathkernel 00_toolkit
NB_ORDER := $(foreach n,$(NB_FIRST),$(filter $(n),$(NB_REFS))) $(filter-out $(NB_FIRST),$(NB_REFS))
nbval: | $(STAMP) data
	@$(MAKE) --no-print-directory -j$(JOBS) --output-sync=target $(NB_ORDER:%=nbval-%)

nbval-%: | $(STAMP) data
	ANALYSIS_PARAMS= ANALYSIS_PROGRESS=0 $(VENV)/bin/pytest tests/notebooks/$*.ipynb -q --nbval-lax --nbval-cell-timeout=900 -p no:cacheprovider

test: lint unit nbval

regen: | $(STAMP) data
	ANALYSIS_PROGRESS=0 $(PY) -m analysis.regen $(NB)

# Cost ratios with intervals (a few minutes, small sizes) and each chapter's last wall time and
# peak memory from .cache/timings.tsv (run `make smoke` first for the smoke numbers).
bench: | $(STAMP) data
	ANALYSIS_PROGRESS=0 $(PY) -m analysis.bench

# Every chapter's smoke profile with -p device cuda, its checked outputs compared with the CPU
# references (tests/notebooks) within rel 1e-2 (analysis.gpucheck); exit 0 with a message where
# there is no GPU. GPU_ARGS: chapters and --rel/--abs.
# The venv pins the CPU build of torch: on a GPU machine give a Python whose torch is a CUDA build
# (GPU_PY=.venv-gpu/bin/python; README, "GPU").
GPU_PY ?= $(PY)
gpu-check: | $(if $(filter $(PY),$(GPU_PY)),$(STAMP)) data
	ANALYSIS_PROGRESS=0 $(GPU_PY) -m analysis.gpucheck $(GPU_ARGS)

# A benchmark of the tests, not a test: deliberate errors in the maths, each in a scratch copy.
mutants: | $(STAMP) data
	$(PY) -m analysis.mutants $(MUTANTS_ARGS)

clean:
	rm -rf book/_build book/_executed book/_mathjax .cache/smoke .cache/runs .cache/deps
