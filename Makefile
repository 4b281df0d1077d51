# Two commands matter: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint venv lock bench bench-smoke soak clean system-packages

run: $(STAMP)
	-./scripts/ensure-system-packages
	$(BIN)/celltrail up --demo

test: $(STAMP) lint system-packages
	$(BIN)/python -m pytest $(PYTEST_ARGS)

system-packages:
	./scripts/ensure-system-packages

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_size.py

venv: $(STAMP)

# The lock (constraints.txt) pins every package, so two installs are the same install.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# Re-resolve the lock from pyproject.toml (needs the package index).
lock:
	rm -rf /tmp/celltrail-lock && $(PYTHON) -m venv /tmp/celltrail-lock
	/tmp/celltrail-lock/bin/python -m pip install --quiet --upgrade "pip>=24"
	/tmp/celltrail-lock/bin/python -m pip install --quiet -e '.[dev]'
	/tmp/celltrail-lock/bin/python -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

# Every benchmark with its ceiling, about 12 minutes plus the growth benchmark's history load (10 million
# readings by default; CELLTRAIL_BENCH_GROWTH_READINGS=100000000 for the issue's full size); writes
# bench/results.json.
bench: $(STAMP) system-packages
	$(BIN)/python -m bench

# Each benchmark briefly (under 2 minutes), in CI: checks they still run, asserts nothing about speed.
bench-smoke: $(STAMP) system-packages
	$(BIN)/python -m bench --smoke

# 10 minutes under steady load, failing on memory growth or latency drift (not part of `make test`);
# CELLTRAIL_SOAK_SECONDS=60 for a short run.
soak: $(STAMP) system-packages
	$(BIN)/python -m bench.soak

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
