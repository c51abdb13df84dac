# Signup Platform. `make run` starts everything; `make test` runs every check and test.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := 3.11
VENV := .venv/bin
# Tests keep compiled bytecode (and pytest's rewritten test modules) under var/pycache, also
# for the processes the end-to-end and fault tests start: without it every run and every started
# process compiles its imports again (seconds of CPU each), whatever PYTHONDONTWRITEBYTECODE says.
PYTEST := env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX=$(CURDIR)/var/pycache \
	$(VENV)/python -m pytest -p no:cacheprovider
UNIT := -m "not integration and not e2e and not faults and not external"

.PHONY: help install servers run test lint typecheck architecture unit properties integration e2e faults bench clean cluster-up cluster-down faults-cluster

help:
	@echo "make run    start the whole system (servers, databases, topology, all services)"
	@echo "           under supervisord; CONSUMER_PROCESSES=N make run: N processes per consumer"
	@echo "make test   lint, type checks, architecture contracts, unit, integration and e2e tests"
	@echo "make unit | properties | integration | e2e | faults | bench | bench-history | lint | typecheck | architecture"
	@echo "           unit: the unit tests only (a small property-test budget); properties: the"
	@echo "           property tests with a large budget; faults: the whole fault matrix"
	@echo "make cluster-up | cluster-down | faults-cluster   local three-node RabbitMQ cluster"

install:
	@command -v uv >/dev/null || python3 -m pip install -q uv
	@$$(command -v uv || echo python3 -m uv) sync --all-packages --frozen --quiet

servers:
	@bash deploy/ensure-servers.sh

run: install
	@bash deploy/run.sh

lint: install
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .

# signup_shared and signup_contracts under --strict's flags (pyproject: [tool.mypy] overrides).
MYPY := $(VENV)/mypy -p signup_shared -p signup_contracts -p accounts -p notifications \
	-p provisioning -p stats -p audit -p devsinks -p signup_dlq -p signup_events
typecheck: install
	$(MYPY)

architecture: install
	$(VENV)/lint-imports

# Only the unit tests are collected (the root conftest skips the server tiers' folders unread);
# lists every unit test slower than 10 ms.
unit: install
	HYPOTHESIS_PROFILE=unit $(PYTEST) -p no:schemathesis $(UNIT) --durations=0 --durations-min=0.01

properties: install
	HYPOTHESIS_PROFILE=properties $(PYTEST) -p no:schemathesis -m "hypothesis and not integration and not e2e and not faults"

integration: install servers
	$(PYTEST) -m integration

e2e: install servers
	$(PYTEST) -m e2e tests

faults: install servers
	FAULTS=all $(PYTEST) -s tests/faults

cluster-up: install servers
	@bash deploy/cluster/cluster.sh start

cluster-down:
	@bash deploy/cluster/cluster.sh stop

faults-cluster: cluster-up
	CLUSTER_TESTS=1 $(PYTEST) -s tests/cluster

# ~7 min; prints one table with the issue-8 targets, writes var/bench/latest.json and a py-spy
# profile. BENCH_QUICK=1: a ~2 min smoke run; BENCH_CONSUMER_PROCESSES=N: processes per consuming
# service in the scale-out repeat of the 100/s phase (default 2, 1 skips it).
bench: install servers
	$(VENV)/python tests/bench/bench.py

# ~2 min, apart from `make bench`: the event history's figures (docs/benchmarks.md, "Event
# history"): 100,000 sealed signups caught up by audit through a real accounts-web's key
# lookups, then the CPU the history adds per signup at 100/s. HISTORY_BENCH_ARGS to change.
.PHONY: bench-history
bench-history: install servers
	$(VENV)/python tests/bench/history_bench.py $(or $(HISTORY_BENCH_ARGS),--events 100000 --cpu-seconds 15)

# Every tier in one session; property tests at the budget CI has always run (profile ci). The
# type check runs beside the tests (mypy is CPU for ~15 s on a fresh clone, while the end-to-end
# and fault tests mostly wait on their stacks): its output goes to var/typecheck.log and is printed
# after the tests; make test fails when either failed.
test: install servers lint architecture
	@mkdir -p var
	@echo "$(MYPY) > var/typecheck.log (beside the tests)"
	@$(MYPY) > var/typecheck.log 2>&1 & mypy=$$!; \
	HYPOTHESIS_PROFILE=ci $(PYTEST) --durations=30; tests=$$?; \
	wait $$mypy; types=$$?; \
	echo "== typecheck (ran beside the tests): exit $$types =="; cat var/typecheck.log; \
	((tests == 0)) || echo "make test: the tests failed (exit $$tests)"; \
	((types == 0)) || echo "make test: the type check failed (exit $$types)"; \
	exit $$((tests || types))

clean:
	rm -rf var .venv

# ~11 min: signups at 5/s for 4 min, 2 min of quiet, 4 min more on a private stack; then
# every effect once, no `missed heartbeats` close of its connections in the RabbitMQ log and
# no `relay.retrying` in the relay logs (prints what it found, fails if anything).
.PHONY: soak
soak: install servers
	PYTHONPATH=tests $(VENV)/python -m platform_harness.soak
