# Two commands on a fresh machine: `make run` (the product locally) and `make test` (everything CI runs).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The locks (hashed, every transitive dependency pinned) generated from pyproject.toml's groups:
# the development one installs here; each function deploys with its role's (docs/deploy.md).
DEV_LOCK := requirements/dev.txt
REQS_HASH := $(shell cat $(DEV_LOCK) pyproject.toml | sha1sum | cut -c1-12)
PY_STAMP := $(VENV)/.installed-$(REQS_HASH)
NODE_STAMP := infra/emulator/node_modules/.package-lock.json

.PHONY: run test pytest lint load bench bench-cold bench-video deps lock clean
# Independent prerequisites at once: the Python and the Node installs of `deps`, the linters
# beside pytest in `test`.
MAKEFLAGS += --jobs=2

deps: $(PY_STAMP) $(NODE_STAMP)

# uv first (its pin and hashes taken from the dev lock), then the lock through uv: the same
# hash-checked wheels as pip would install, in about a quarter of pip's time.
UV_INSTALL := $(VENV)/bin/uv pip install --quiet --python $(PY) --no-deps
# The venv has no pip when this Python's own pip can install into it (ensurepip alone takes ~3 s):
# pip installs only uv.
$(PY_STAMP):
	@if [ ! -x $(PY) ]; then \
		if $(PYTHON) -m pip --python "$$($(PYTHON) -c 'import sys; print(sys.executable)')" \
			--version >/dev/null 2>&1; \
		then $(PYTHON) -m venv --without-pip $(VENV); else $(PYTHON) -m venv $(VENV); fi; fi
	@awk '/^uv==/ {p = 1} p {print} p && !/\\$$/ {exit}' $(DEV_LOCK) > $(VENV)/uv-lock.txt
	@if $(PY) -m pip --version >/dev/null 2>&1; then pip="$(PY) -m pip"; \
		else pip="$(PYTHON) -m pip --python $(PY)"; fi; set -x; \
		$$pip --quiet --disable-pip-version-check install --require-hashes --no-deps -r $(VENV)/uv-lock.txt
	$(UV_INSTALL) --require-hashes --compile-bytecode -r $(DEV_LOCK)
	$(UV_INSTALL) -e .
	@rm -f $(VENV)/.installed-* && touch $@

# Resolve pyproject.toml's groups into the locks, for the deployed runtime (Linux x86_64, Python
# 3.11). The development lock first, keeping its current pins where they still fit (edit a pin in
# pyproject.toml to move it); the others are constrained to it, so what deploys is what was tested.
COMPILE := $(VENV)/bin/uv pip compile --quiet --generate-hashes --python-version 3.11 \
	--python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" pyproject.toml

lock: $(PY_STAMP)
	$(COMPILE) --all-extras --group build --group dev -o $(DEV_LOCK)
	$(COMPILE) -c $(DEV_LOCK) -o requirements/serve-results.txt
	$(COMPILE) -c $(DEV_LOCK) --extra classify --extra tensorflow -o function/requirements.txt
	$(COMPILE) -c $(DEV_LOCK) --extra classify -o requirements/serve-classify-lite.txt
	$(COMPILE) -c $(DEV_LOCK) --group build -o requirements/build.txt

$(NODE_STAMP): infra/emulator/package.json infra/emulator/package-lock.json
	cd infra/emulator && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

run: deps
	$(PY) infra/local.py run

lint: deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# The linters and pytest at once (mypy runs on one core for ~8 s, beside pytest's start);
# either failing fails `make test`.
test: lint pytest

# Three workers on two cores: a third runs while the others wait on their servers and emulators;
# `--dist loadfile` keeps each module (and its module-scoped servers) on one.
TEST_WORKERS ?= 3
pytest: deps
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=15

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
