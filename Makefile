# Two commands for a newcomer (see README): `make demo` and `make test`. Both set everything up first.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP_FLAGS ?= -q

.PHONY: setup demo test lint
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) -c constraints.txt -e ".[all,dev]"
	touch $@

demo: setup
	$(VENV)/bin/tempbench run --model tiny-synthetic --task synthetic --batch-size 4

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .
