# Set-up and everyday commands. Every target is idempotent: re-running only redoes what changed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch first, pinned to the CPU build that pip finds on this kind of machine; the
# project's own `torch>=2.1` is then already satisfied and no CUDA wheel is downloaded.
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.recfeat-installed

.PHONY: setup demo test lint docs clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev]'
	bash benchmarks/peers/install_lightfm.sh $(BIN)/python  # evaluate --peers lightfm: no working sdist build on PyPI
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	HF_HUB_OFFLINE=1 $(BIN)/recfeat demo

test: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check core plugins exporters tests benchmarks

# the documentation site, every warning an error (tests/test_docs_site.py builds it in CI too);
# `python -m mkdocs`: the console script would put .venv/bin, with the `recfeat` command, first
docs: setup
	$(BIN)/python -m mkdocs build --strict --site-dir site

clean-venv:
	rm -rf $(VENV)
