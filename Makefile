# Two entry points (see README): `make serve` and `make test`.
# Both create the local virtualenv on first use from pyproject.toml, so a fresh clone needs only Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/python -m fhir_server serve

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Load the sample provider directory (payers, networks, groups, 25 professionals) into the configured store.
demo: $(STAMP)
	$(BIN)/python -m fhir_server load tests/data/directory/directory.json

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) data
