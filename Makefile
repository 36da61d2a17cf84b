# The only entry points of the report. `make book` and `make test` do all set-up themselves.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FMNIST := /usr/share/datasets/fashion-mnist

NB_SRC := $(sort $(wildcard notebooks/*.md))
STEMS := $(notdir $(basename $(NB_SRC)))
EXECUTED := $(STEMS:%=book/_executed/%.ipynb)
SMOKED := $(STEMS:%=.cache/smoke/%.ipynb)
PKG := $(shell find analysis -name '*.py') pyproject.toml
BOOK_SRC := $(wildcard book/*.md book/*.yml book/*.bib)
HTML := book/_build/html/index.html

.PHONY: help venv data book smoke test lint unit nbval regen chapter bench clean

help:
	@echo "make book     execute every chapter (profile full) and build the HTML book"
	@echo "make test     ruff, unit/property tests, nbval on the smoke references"
	@echo "make smoke    execute every chapter with profile smoke into .cache/smoke/"
	@echo "make chapter NB=<stem> PARAMS='-p name value ...'   rerun one chapter"
	@echo "make regen    rewrite tests/notebooks/ (the nbval references)"
	@echo "make bench    time smoke runs of every chapter (.cache/timings.tsv)"

venv: $(STAMP)
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# Debian's package of the official Fashion-MNIST files (installed only when absent).
data:
	@if [ ! -e $(FMNIST)/train-images-idx3-ubyte.gz ] && [ ! -e $(FMNIST)/train-images-idx3-ubyte ]; then \
	  if command -v apt-get >/dev/null; then \
	    SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	  else echo "warning: no apt-get; Fashion-MNIST chapters need data_source=torchvision or a folder"; fi; \
	fi

book/_executed/%.ipynb: notebooks/%.md $(PKG) | $(STAMP) data
	ANALYSIS_RECORDS=book/_executed/records $(PY) -m analysis.run $< $@ -p profile full

$(HTML): $(EXECUTED) $(BOOK_SRC)
	$(PY) -m analysis.scorecard book/_executed/records book/_executed
	$(VENV)/bin/jupyter-book build book -W --keep-going
	@echo "the book: $(CURDIR)/$(HTML)"

book: $(HTML)

.cache/smoke/%.ipynb: notebooks/%.md $(PKG) | $(STAMP) data
	ANALYSIS_RECORDS=.cache/smoke/records $(PY) -m analysis.run $< $@ -p profile smoke

smoke: $(SMOKED)

chapter: | $(STAMP) data
	@test -n "$(NB)" || { echo "usage: make chapter NB=<stem> PARAMS='-p name value ...'"; exit 2; }
	ANALYSIS_RECORDS=.cache/runs/records $(PY) -m analysis.run notebooks/$(NB).md .cache/runs/$(NB).ipynb -p profile full $(PARAMS)

lint: | $(STAMP)
	$(VENV)/bin/ruff check analysis tests

unit: | $(STAMP) data
	$(VENV)/bin/pytest tests -q --ignore=tests/notebooks

nbval: | $(STAMP) data
	ANALYSIS_PROGRESS=0 $(VENV)/bin/pytest tests/notebooks -q --nbval-lax --nbval-cell-timeout=900 -p no:cacheprovider

test: lint unit nbval

regen: | $(STAMP) data
	ANALYSIS_PROGRESS=0 $(PY) -m analysis.regen $(NB)

bench: | $(STAMP) data
	for s in $(STEMS); do ANALYSIS_RECORDS=.cache/smoke/records $(PY) -m analysis.run notebooks/$$s.md .cache/smoke/$$s.ipynb -p profile smoke; done
	@tail -n $(words $(STEMS)) .cache/timings.tsv

clean:
	rm -rf book/_build book/_executed .cache/smoke .cache/runs
