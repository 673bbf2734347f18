# Two commands on a fresh machine: `make run` (the product locally) and `make test` (everything CI runs).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQS_HASH := $(shell cat requirements.txt function/requirements.txt pyproject.toml | sha1sum | cut -c1-12)
PY_STAMP := $(VENV)/.installed-$(REQS_HASH)
NODE_STAMP := infra/emulator/node_modules/.package-lock.json

.PHONY: run test test-npm-emulator lint load bench bench-cold bench-video deps clean

deps: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@rm -f $(VENV)/.installed-* && touch $@

$(NODE_STAMP): infra/emulator/package.json infra/emulator/package-lock.json
	cd infra/emulator && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

run: deps
	$(PY) infra/local.py run

lint: deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: lint
	$(PY) -m pytest
	@$(MAKE) --no-print-directory test-npm-emulator

# The Firestore-facing tests (marker `firestore`) again on the npm emulator, the fallback where
# gcloud's official one is not installed, so both stay supported.
test-npm-emulator: deps
	FIRESTORE_EMULATOR=npm FIRESTORE_EMULATOR_HOST= $(PY) -m pytest -q -m firestore --ignore=tests/e2e

load: deps
	$(PY) -m tests.support.load

# Cold start, warm latency, concurrency and memory as ratios (~2 min); writes docs/bench.*.
bench: deps
	$(PY) -m infra.bench

# The cold path alone (~6 min): preload on/off, gs:// (fake-gcs-server) vs local, fp16; docs/bench_cold.*.
bench-cold: deps
	$(PY) -m infra.bench --cold-only

# Video: warm end to end of an 8-frame video / bare forward of 8 frames (~1 min); docs/bench_video.*.
bench-video: deps
	$(PY) -m infra.bench.video

clean:
	rm -rf $(VENV) .cache infra/emulator/node_modules
