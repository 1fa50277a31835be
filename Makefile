# On a fresh machine (Python 3.11):
#   make test        set up .venv, fetch Fashion-MNIST where possible, run the test suite
#   make demo        the same set-up, then notebook 01's headline comparison at the demo preset
#                    (Adam+L2, Adam, SGD+L2; a few minutes on 2 cores), written to scratch/demo/
#                    (git ignores it; figures/demo/ is the committed record, made by
#                    `python -m sparsitylib reproduce --preset demo`)
#   make reproduce   the same set-up, then the reproduction of both regimes (quick, then long; or
#                    PRESET=smoke|quick|long|paper for one), then the README's verdict tables and quoted
#                    numbers from the verdict JSONs
#   make report      the same set-up, then re-render figures/<preset>/ from its committed run archive
#                    (figures/<preset>/runs.jsonl.gz): no training, except the runs that pruning needs
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PRESET ?=
PRESETS := $(if $(PRESET),$(PRESET),quick long)

.PHONY: test demo reproduce report tables setup data benchmark lab clean

# one pytest-xdist worker per core; tests sharing a module-scoped fixture share a worker
TEST_WORKERS ?= auto
test: setup data
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=15

demo: setup data
	$(PY) -m sparsitylib reproduce --preset demo --figures scratch/demo
	@echo "the figure: scratch/demo/01_optimizer_regularizer_heatmaps.png (the report: scratch/demo/report/index.html)"

reproduce: setup data
	for preset in $(PRESETS); do $(PY) -m sparsitylib reproduce --preset $$preset || exit 1; done
	for preset in $(PRESETS); do $(PY) -m sparsitylib readme --preset $$preset || exit 1; done

report: setup data
	for preset in $(PRESETS); do \
	  if [ -f figures/$$preset/runs.jsonl.gz ]; then $(PY) -m sparsitylib reproduce --from-archive --preset $$preset || exit 1; \
	  else echo "figures/$$preset/runs.jsonl.gz: no run archive for the $$preset preset yet, skipped"; fi; done
	for preset in $(PRESETS); do $(PY) -m sparsitylib readme --preset $$preset || exit 1; done

tables: setup data
	$(PY) -m sparsitylib headline --preset $(or $(PRESET),quick)

benchmark: setup data
	$(PY) benchmarks/training_throughput.py
	$(PY) benchmarks/precision_levers.py
	$(PY) benchmarks/notebook_cached.py --preset $(or $(PRESET),quick)
	$(PY) benchmarks/prune_speedup.py --preset $(or $(PRESET),quick)

# JupyterLab on the notebooks, without opening a browser (the URL is printed); as root it needs
# --allow-root. LAB_ARGS adds flags, e.g. make lab LAB_ARGS="--port 9999 --ip 0.0.0.0".
LAB_ARGS ?=
lab: setup
	$(VENV)/bin/jupyter lab --no-browser $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS) notebooks/

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
