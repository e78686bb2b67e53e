# One command per habit. `make demo` and `make test` do all the set-up themselves on a fresh machine.
PY ?= python3
UV := $(PY) -m uv
RUN := $(UV) run --frozen

.PHONY: deps demo test test-unit faults hostile lint typecheck fmt contract up down status clean

deps:            ## install uv, Java/Maven if missing, and the locked Python workspace
	@bash deploy/bootstrap.sh

demo: deps       ## the whole pipeline on the local stack, with a scenario you can read
	$(RUN) python -m dealreg_devstack demo

test: deps       ## lint, types, then every test (unit, integration, end to end) on the real stack
	$(RUN) ruff check .
	$(RUN) mypy
	$(RUN) pytest

test-unit: deps  ## the fast layer only: no broker, no database
	$(RUN) pytest tests/unit

faults: deps     ## the fault-injection suite alone, long form (DEALREG_FAULT_REGISTRATIONS to change its size)
	DEALREG_FAULT_REGISTRATIONS=$${DEALREG_FAULT_REGISTRATIONS:-1500} $(RUN) pytest -m faults -s

hostile: deps    ## the hostile-input suite alone, with its outcome breakdown (DEALREG_HOSTILE_INPUTS to change its size)
	$(RUN) pytest -m hostile -s

lint: deps       ## ruff lint and format check
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: deps  ## mypy, strict, with the pydantic plugin
	$(RUN) mypy

fmt: deps        ## format and fix what ruff can
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

contract: deps   ## regenerate the published contract (contract/asyncapi.json, contract/schemas/) from the code
	$(RUN) python -m dealreg_shared.asyncapi contract

up: deps         ## start Kafka (KRaft) and Postgres locally, create topics, schemas and roles (idempotent)
	$(RUN) python -m dealreg_devstack up

down: deps       ## stop the local Kafka and Postgres (data stays in .dealreg/)
	$(RUN) python -m dealreg_devstack down

status: deps     ## what of the local stack runs
	$(RUN) python -m dealreg_devstack status

clean: down      ## stop the stack and delete its data, logs and the cached Kafka jars
	rm -rf .dealreg

.PHONY: bench bench-intake bench-conflict bench-notify bench-retention
RUNS ?= 1
bench: deps      ## the whole pipeline: throughput, latency, per-stage rates, memory, beside the relay and database ceilings (RUNS=3: three in a row, compared)
	$(RUN) python -m dealreg_devstack.bench --runs $(RUNS)

bench-intake: deps  ## intake's throughput on valid signed submissions (records/s), intake alone on the local stack
	$(RUN) python -m dealreg_devstack.bench_intake

bench-conflict: up  ## conflict: name-matching precision/recall, decision time at 10k and 1M active registrations
	$(RUN) python -m dealreg_conflict.evaluation
	DEALREG_ADMIN_DATABASE_URL="$$($(RUN) python -c 'from dealreg_devstack.postgres_local import layout; from dealreg_devstack.provision import on_database; print(on_database(layout().admin_dsn, "dealreg"))')" \
		$(RUN) python -m dealreg_conflict.benchmark

bench-notify: deps  ## notifications delivered per second to local SMTP and webhook sinks
	$(RUN) python -m dealreg_devstack.bench_notify

bench-retention: deps  ## the inbox's retention: a round over 2 million rows received in 60 days, in a scratch schema
	$(RUN) python -m dealreg_devstack.bench_retention
