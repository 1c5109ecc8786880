# Shiftboard. `make run` and `make test` work on a fresh machine (python3 only).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
DEV_ENV := DEBUG=1

.PHONY: run test install migrate seed serve schema check-deploy bench ops-cost explain lint clean topology-start topology-stop scale-proofs

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	$(DEV_ENV) $(PY) manage.py migrate --noinput -v0

seed: migrate
	$(DEV_ENV) $(PY) manage.py seed --if-empty

run: seed
	@echo ""
	@echo "Shiftboard on http://127.0.0.1:$(PORT)/"
	@$(DEV_ENV) $(PY) manage.py runinfo
	@echo "  API:      http://127.0.0.1:$(PORT)/api/v1/jobs/"
	@echo "  Docs:     http://127.0.0.1:$(PORT)/api/docs/   (schema: /api/schema/)"
	@echo "  Admin:    http://127.0.0.1:$(PORT)/admin/      (login: admin@shiftboard.local / demo-pass-123)"
	@echo "  Toolbar:  on every HTML page (browsable API, admin, docs) with DEBUG=1, e.g. http://127.0.0.1:$(PORT)/api/v1/jobs/?format=api"
	@echo "  Health:   http://127.0.0.1:$(PORT)/api/v1/health/"
	@echo ""
	$(DEV_ENV) $(PY) manage.py runserver 0.0.0.0:$(PORT)

test: install
	$(PY) -m pytest

# ruff (pyproject.toml) and the import-linter layering contracts, as CI runs them.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

schema: install
	$(DEV_ENV) $(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

# Production-style server: gunicorn, DEBUG off. Needs SECRET_KEY (and usually DATABASE_URL, REDIS_URL).
# Prometheus multiprocess mode: every worker writes its samples to
# PROMETHEUS_MULTIPROC_DIR and /metrics sums them; emptied at each start.
# Worker model (config/gunicorn.py): WEB_CONCURRENCY processes x GUNICORN_THREADS
# threads, each process with one psycopg pool (DATABASE_POOL=1 here by default;
# size DATABASE_POOL_MAX_SIZE, default GUNICORN_THREADS; ignored on SQLite).
# LOG_FORMAT=json: JSON lines, the app's access line instead of gunicorn's.
PROMETHEUS_MULTIPROC_DIR ?= $(CURDIR)/.prometheus-multiproc
DATABASE_POOL ?= 1
serve: install
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py migrate --noinput -v0
	mkdir -p $(PROMETHEUS_MULTIPROC_DIR) && rm -f $(PROMETHEUS_MULTIPROC_DIR)/*.db
	DATABASE_POOL=$(DATABASE_POOL) PROMETHEUS_MULTIPROC_DIR=$(PROMETHEUS_MULTIPROC_DIR) \
		$(VENV)/bin/gunicorn -c config/gunicorn.py config.wsgi --bind 0.0.0.0:$(PORT) \
		$$([ "$${LOG_FORMAT:-plain}" = json ] || echo --access-logfile -)

# The benchmark (bench/, report in bench/results/<date>/): needs PostgreSQL and Redis at the
# hosts of DATABASE_URL / REDIS_URL (defaults: this machine's), but uses only its own database
# shiftboard_bench and Redis db 8 (BENCH_DB_NAME, BENCH_REDIS_DB). Bench-only packages go into
# .venv from bench/requirements.txt; wrk from Debian's packages. Add 1,000,000 jobs with
# `make bench BENCH_FLAGS=--huge`. At the main size it also compares the slow-query hook on and off on
# cache misses, in one server process and on two servers (docs/operations.md, "The hook in make bench";
# alone: `python -m bench.run --only-hook --sizes 1000`).
BENCH_FLAGS ?=
$(VENV)/.bench-installed: $(VENV)/.installed bench/requirements.txt
	$(PY) -m pip install --quiet -r bench/requirements.txt
	touch $@

bench: $(VENV)/.bench-installed
	@command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null 2>&1 \
		|| { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq wrk >/dev/null 2>&1; } \
		|| echo "wrk could not be installed: the bench falls back to its Python load driver"
	$(PY) -m bench.run $(BENCH_FLAGS)

# What the slow-query hook and the connection pool cost (bench/ops_cost.py): its own
# database shiftboard_ops_cost (OPS_COST_DB_NAME) on DATABASE_URL's server, Redis db
# OPS_COST_REDIS_DB (default 7), wrk; about two minutes; prints a table.
ops-cost: install
	@command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null 2>&1 \
		|| { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq wrk >/dev/null 2>&1; }
	$(PY) -m bench.ops_cost $(OPS_COST_FLAGS)

# Index proof (tools/management/commands/explain_plans.py): loads EXPLAIN_JOBS jobs (default
# 100,000) and proportional rows into its own database shiftboard_explain on the PostgreSQL
# server of DATABASE_URL (default: this machine's), EXPLAINs every list the API serves and
# fails on a sequential or full index scan of a big table. A few minutes; not part of `make
# test`. EXPLAIN_FLAGS=--reuse keeps an already loaded database.
EXPLAIN_JOBS ?= 100000
EXPLAIN_FLAGS ?=
explain: install
	DEBUG=1 DEBUG_TOOLBAR=0 DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres} \
		$(PY) manage.py explain_plans --jobs $(EXPLAIN_JOBS) $(EXPLAIN_FLAGS)

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles

# A scaled-out topology on this machine (scripts/topology.py; docs/scaling.md): PostgreSQL
# primary + delayed streaming replica, Redis master + replica + 3 sentinels, a 3-master
# Redis Cluster, on free ports. `make topology-start` prints the variables to run with.
APPLY_DELAY_MS ?= 500
topology-start:
	python3 scripts/topology.py start --apply-delay-ms $(APPLY_DELAY_MS)

topology-stop:
	python3 scripts/topology.py stop

# The scale proofs on a topology of their own (replica lag, Sentinel failover, Cluster);
# CI runs them as a separate step. About 10 minutes on 2 cores.
scale-proofs: install
	./scripts/scale_proofs.sh
