# Two commands for a newcomer (see README): `make demo` and `make test`. Both set everything up first.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP_FLAGS ?= -q

.PHONY: setup demo test lint
setup: $(VENV)/.installed

# PIP_CONSTRAINT also reaches the isolated build environments (deepspeed builds from source and imports torch).
$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	PIP_CONSTRAINT=$(CURDIR)/constraints.txt DS_BUILD_OPS=0 $(PY) -m pip install $(PIP_FLAGS) -c constraints.txt -e ".[all,dev]"
	touch $@

demo: setup
	$(VENV)/bin/tempbench demo

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .
