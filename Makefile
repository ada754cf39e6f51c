# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv once (a stamp file records the install) and reuse it afterwards.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
BIN := $(VENV)/bin

.PHONY: demo test lint clean peers

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/surrogateshap demo --out out/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check surrogateshap metrics callbacks tests benchmarks

# shapiq's approximators for benchmarks/estimator_peers.py, each in its own environment (never a dependency of
# the library): shapiq 1.4.1 is the newest for Python 3.11, 1.8.0 (its newest approximators) needs Python 3.12.
PYTHON312 ?= python3.12
peers:
	test -x .venv-peers/bin/python || $(PYTHON) -m venv .venv-peers
	.venv-peers/bin/python -m pip install 'shapiq==1.4.1' xgboost-cpu lightgbm
	test -x .venv-peers312/bin/python || $(PYTHON312) -m venv .venv-peers312
	.venv-peers312/bin/python -m pip install 'shapiq==1.8.0' xgboost-cpu lightgbm

clean:
	rm -rf $(VENV) build *.egg-info
