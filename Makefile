# Two commands do everything: `make demo` and `make test`. Both create or reuse .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv demo demo-ingest test bench clean

venv: $(STAMP)

# torch first and pinned (the CPU wheel), then everything else in ONE pip call under the same pin,
# so no later package can pull a CUDA torch or downgrade an earlier one.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

# The molecule VAE end to end (ingest, train, encode, sample, evaluate): about 15 minutes on 2 cores.
demo: venv
	$(VENV)/bin/latentsci run pipelines/zinc_vae.toml

# Ingest and fingerprints only (about 3 minutes).
demo-ingest: venv
	$(VENV)/bin/latentsci run pipelines/zinc_ingest.toml

test: venv
	$(PY) -m pytest -q

bench: venv
	$(PY) bench/bench_ingest.py
	$(PY) bench/bench_store.py
	$(PY) bench/bench_vae.py
	$(PY) bench/bench_fields.py

clean:
	rm -rf runs .pytest_cache
