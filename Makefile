# Two commands on a fresh machine (python3 and make): `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint compat bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.server: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[server]'
	touch $@

$(VENV)/.bench: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[server,bench]'
	touch $@ $(VENV)/.server

$(VENV)/.dev: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[server,compat,port,dev]'
	touch $@ $(VENV)/.server

## Serve the port with Hypercorn on the embedded SQLite store (instance/), with one local
## agent streaming this machine's metrics to it (stopped with the server). `hostpulse init`
## first refuses, in one line, a port in use, an instance folder it cannot write or a bad
## setting, and points the local agent at this URL; `hostpulse serve` binds the port without
## SO_REUSEPORT (a second server is refused, not given half the connections) for Hypercorn.
run: $(VENV)/.server
	@$(PY) -m hostpulse init --url http://$(HOST):$(PORT) --bind $(HOST):$(PORT)
	$(PY) -m agent --config "$${HOSTPULSE_INSTANCE:-instance}/agent.toml" & agent=$$!; \
	trap 'kill $$agent 2>/dev/null; wait $$agent' EXIT; \
	trap 'exit 0' INT TERM; \
	$(PY) -m hostpulse serve --bind $(HOST):$(PORT) -- $(VENV)/bin/hypercorn --config hypercorn.toml 'app:create_app()'

## ruff (lint and format check) and mypy --strict on hostpulse/, app/, agent/, as configured in
## pyproject.toml.
lint: $(VENV)/.dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

## The whole test suite, after lint.
test: $(VENV)/.dev lint
	$(PY) -m pytest -q

## The compat suite on hostpulse in full: in-process, live (the Flask version on gunicorn, the port
## on Hypercorn), 2,000 fuzz requests and the mutant self-check; reports in compat-report.json /
## compat-report.html, the apps' own logs in compat-logs/.
compat: $(VENV)/.dev
	$(PY) -m compat --mode all --fuzz 2000 --mutants --report compat-report.json --report compat-report.html

## Benchmarks: the Flask version (gunicorn sync and gevent workers) against the port and a bare Quart
## app, ratio tables and bench/results/*.json (QUICK=1: ~3 min).
bench: $(VENV)/.bench
	command -v wrk >/dev/null 2>&1 || apt-get install -y wrk >/dev/null 2>&1 || echo "wrk not installed: the aiohttp load generator is used"
	$(PY) -m bench $(if $(QUICK),--quick)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
