#!/usr/bin/env bash
# schemathesis (pinned in requirements.txt) against a live gunicorn on PostgreSQL +
# Redis, as an anonymous caller and as the signed-in demo client, with the checks
# not_a_server_error and the response conformance checks (status code, content
# type, headers, body schema). Exits non-zero on any failure. Bounded: a fixed
# number of cases per operation, and `timeout` around each run.
#
# Uses its own database and Redis db (both emptied first), never the test or bench ones:
#   CONTRACT_PG_URL   server to create the database on  (default postgres://postgres@127.0.0.1:5432)
#   CONTRACT_DB_NAME  database name                     (default shiftboard_contract)
#   CONTRACT_REDIS_URL                                  (default redis://127.0.0.1:6379/5)
#   SCHEMATHESIS_MAX_EXAMPLES (default 20), SCHEMATHESIS_SEED (default 20261130)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
PG_URL=${CONTRACT_PG_URL:-postgres://postgres@127.0.0.1:5432}
DB_NAME=${CONTRACT_DB_NAME:-shiftboard_contract}
export REDIS_URL=${CONTRACT_REDIS_URL:-redis://127.0.0.1:6379/5}
export DATABASE_URL="$PG_URL/$DB_NAME"
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-20}
SEED=${SCHEMATHESIS_SEED:-20261130}
RUN_TIMEOUT=${SCHEMATHESIS_RUN_TIMEOUT:-300}
REPORT_DIR=${SCHEMATHESIS_REPORT_DIR:-$(mktemp -d)}
mkdir -p "$REPORT_DIR"

# Production settings (DEBUG off), served on loopback; throttles high enough not to
# hide operations behind 429s (those are documented, but would test nothing else).
export SECRET_KEY="schemathesis-$(head -c 32 /dev/urandom | base64 | tr -d '/+=\n')"
export DEBUG=0 ALLOWED_HOSTS=127.0.0.1 SECURE_SSL_REDIRECT=0 DEBUG_TOOLBAR=0
export THROTTLE_LOGIN=100000/min THROTTLE_REGISTER=100000/min THROTTLE_OTP=100000/min \
  THROTTLE_OTP_VERIFY=100000/min THROTTLE_APPLICATIONS=100000/min THROTTLE_PAYMENTS=100000/min \
  THROTTLE_REVIEWS=100000/min
unset PROMETHEUS_MULTIPROC_DIR

echo "== schemathesis: database $DB_NAME, Redis $REDIS_URL"
psql "$PG_URL/postgres" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" \
  -c "CREATE DATABASE $DB_NAME" >/dev/null
redis-cli -u "$REDIS_URL" FLUSHDB >/dev/null
$PY manage.py migrate --noinput -v0
# A throwaway database: seed may give its users the published demo password.
ALLOW_DEMO_PASSWORD=1 $PY manage.py seed --jobs 40 >/dev/null
TOKEN=$($PY manage.py drf_create_token client@shiftboard.local | awk '{print $3}')
[ -n "$TOKEN" ] || { echo "no token for the demo client"; exit 1; }

PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
.venv/bin/gunicorn -c config/gunicorn.py config.wsgi --workers 2 --bind "127.0.0.1:$PORT" \
  --log-level warning >"$REPORT_DIR/gunicorn.log" 2>&1 &
GUNICORN_PID=$!
trap 'kill $GUNICORN_PID 2>/dev/null || true; wait $GUNICORN_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -sf "$BASE/api/v1/health/" >/dev/null && break
  sleep 0.2
done
curl -sf "$BASE/api/v1/health/" >/dev/null || { echo "gunicorn did not start"; cat "$REPORT_DIR/gunicorn.log"; exit 1; }

# One worker: with several, hypothesis parses lambda sources from several threads at
# once, and CPython 3.11.7's ast.parse can then fail inside schemathesis itself
# ("AST constructor recursion depth mismatch", a runtime error, not a finding).
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance
run() {
  local name=$1; shift
  echo "== schemathesis as $name ($MAX_EXAMPLES cases per operation at most, seed $SEED)"
  timeout "$RUN_TIMEOUT" .venv/bin/schemathesis --config-file scripts/schemathesis.toml run "$BASE/api/schema/?format=json" \
    --checks "$CHECKS" --max-examples "$MAX_EXAMPLES" --seed "$SEED" --workers 1 \
    --phases examples,coverage,fuzzing --request-timeout 10 --generation-database none \
    --suppress-health-check all --no-color --warnings off \
    --report junit --report-junit-path "$REPORT_DIR/$name.xml" "$@"
}
status=0
run anonymous || status=1
# Signed in as the demo client. Logout is left out of this run: it would revoke the
# token and turn every later request into a 401 (it runs in the anonymous run and,
# with a token, in tests/contract/test_generated_client.py).
run client -H "Authorization: Token $TOKEN" --exclude-path /api/v1/auth/logout/ || status=1
if grep -q " 500 \| 502 \| 503 " "$REPORT_DIR/gunicorn.log" 2>/dev/null; then
  echo "gunicorn logged server errors:"; grep " 50[0-9] " "$REPORT_DIR/gunicorn.log" | head -20
fi
echo "== schemathesis reports in $REPORT_DIR"
exit $status
