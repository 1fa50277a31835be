# On a fresh machine (Python 3.11):
#   make test        set up .venv, fetch Fashion-MNIST where possible, run the test suite
#   make reproduce   the same set-up, then the reproduction (PRESET=smoke|quick|paper), then the
#                    README's verdict table and quoted numbers from its verdict JSONs
#   make report      the same set-up, then re-render figures/<preset>/ from its committed run archive
#                    (figures/<preset>/runs.jsonl.gz): no training, except the runs that pruning needs
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PRESET ?= quick

.PHONY: test reproduce report tables setup data benchmark lab clean

test: setup data
	$(PY) -m pytest

reproduce: setup data
	$(PY) -m sparsitylib reproduce --preset $(PRESET)
	$(PY) -m sparsitylib readme --preset $(PRESET)

report: setup data
	$(PY) -m sparsitylib reproduce --from-archive --preset $(PRESET)
	$(PY) -m sparsitylib readme --preset $(PRESET)

tables: setup data
	$(PY) -m sparsitylib tables --preset $(PRESET)

benchmark: setup data
	$(PY) benchmarks/training_throughput.py
	$(PY) benchmarks/notebook_cached.py --preset $(PRESET)
	$(PY) benchmarks/prune_speedup.py --preset $(PRESET)

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

data: setup
	@PY=$(PY) sh scripts/install-data.sh

clean:
	rm -rf $(VENV) .pytest_cache
