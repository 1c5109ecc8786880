#!/usr/bin/env bash
# A first walk through the API with curl, against a running server (make run):
#   scripts/walkthrough.sh [BASE]      BASE defaults to http://127.0.0.1:8000
# Registers a client and a worker, posts a job, applies, accepts, starts,
# completes, pays with an Idempotency-Key (and replays it), confirms, and both
# sides review each other; then shows the worker's public profile and a filtered
# job list. Every id and token is taken from the previous answer. Needs curl and
# python3 (to read JSON). Exits non-zero at the first unexpected status.
set -euo pipefail
B="${1:-http://127.0.0.1:8000}/api/v1"
RUN=$(date +%s)-$$   # unique e-mail addresses, so the walk can be run again

# call EXPECTED_STATUS METHOD PATH [curl args...]: prints the body, checks the status.
call() {
  local expected=$1 method=$2 path=$3; shift 3
  local out status
  out=$(curl -s -w '\n%{http_code}' -X "$method" "$B$path" "$@")
  status=${out##*$'\n'}
  BODY=${out%$'\n'*}
  echo "$method $path -> $status" >&2
  if [ "$status" != "$expected" ]; then
    echo "expected $expected, got $status: $BODY" >&2
    exit 1
  fi
}
# get EXPR: a value from the last answer, e.g. get data.token, get 'data[0].id'.
get() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2], {}, d))' "$BODY" "$1"; }
JSON=(-H 'Content-Type: application/json')

# 1. A client and a worker register; each answer carries the new user and a token.
call 201 POST /auth/register/ "${JSON[@]}" \
  -d '{"email":"cleo-'"$RUN"'@example.com","password":"Tr1cky-pass-42","role":"client","first_name":"Cleo","last_name":"Client"}'
CLIENT=$(get "data['token']"); CLIENT_ID=$(get "data['user']['id']")
call 201 POST /auth/register/ "${JSON[@]}" \
  -d '{"email":"wes-'"$RUN"'@example.com","password":"Tr1cky-pass-42","role":"worker","first_name":"Wes","last_name":"Worker"}'
WORKER=$(get "data['token']"); WORKER_ID=$(get "data['user']['id']")

# 2. The client posts a job: a category from the list, a shift of 2 hours starting now.
call 200 GET /categories/
CATEGORY=$(get "data[0]['slug']")
START=$(python3 -c 'import datetime as d; print(d.datetime.now(d.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))')
END=$(python3 -c 'import datetime as d; print((d.datetime.now(d.timezone.utc)+d.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"))')
call 201 POST /jobs/ -H "Authorization: Token $CLIENT" "${JSON[@]}" \
  -d '{"title":"Bar shift","description":"Serve drinks.","category":"'"$CATEGORY"'","skills":[],"city":"Berlin",
       "rate":"25.00","currency":"EUR","workers_needed":1,"start_at":"'"$START"'","end_at":"'"$END"'"}'
JOB=$(get "data['id']")

# 3. The worker applies; the client accepts (the job is then filled), starts and completes it.
call 201 POST "/jobs/$JOB/apply/" -H "Authorization: Token $WORKER" "${JSON[@]}" -d '{"cover_note":"I can do it."}'
APP=$(get "data['id']")
call 200 POST "/applications/$APP/accept/" -H "Authorization: Token $CLIENT"
call 200 POST "/jobs/$JOB/start/" -H "Authorization: Token $CLIENT"
call 200 POST "/jobs/$JOB/complete/" -H "Authorization: Token $CLIENT"

# 4. The client pays the worker (2 hours at 25.00) with an Idempotency-Key; the same
#    request again answers 200 with the same payment; then confirms it.
PAY_BODY='{"job":'$JOB',"recipient":'$WORKER_ID',"amount":"50.00","currency":"EUR"}'
call 201 POST /payments/ -H "Authorization: Token $CLIENT" -H "Idempotency-Key: pay-$RUN" "${JSON[@]}" -d "$PAY_BODY"
PAY=$(get "data['id']")
call 200 POST /payments/ -H "Authorization: Token $CLIENT" -H "Idempotency-Key: pay-$RUN" "${JSON[@]}" -d "$PAY_BODY"
[ "$(get "data['id']")" = "$PAY" ] || { echo "the replay made another payment" >&2; exit 1; }
call 200 POST "/payments/$PAY/confirm/" -H "Authorization: Token $CLIENT"
echo "payment $PAY: $(get "data['status']")"

# 5. Both sides review each other.
call 201 POST /reviews/ -H "Authorization: Token $CLIENT" "${JSON[@]}" \
  -d '{"job":'$JOB',"reviewed":'$WORKER_ID',"rating":5,"comment":"Great work."}'
call 201 POST /reviews/ -H "Authorization: Token $WORKER" "${JSON[@]}" \
  -d '{"job":'$JOB',"reviewed":'$CLIENT_ID',"rating":4,"comment":"Fair client."}'

# 6. Anyone sees the worker's rating at once (never e-mail or phone), and the job in a filtered list.
call 200 GET "/users/$WORKER_ID/"
echo "worker $WORKER_ID: rating_avg $(get "data['rating_avg']"), completed_jobs $(get "data['completed_jobs']")"
call 200 GET "/jobs/?client=$CLIENT_ID&status=completed"
[ "$(get "data[0]['id']")" = "$JOB" ] || { echo "the completed job is not in the list" >&2; exit 1; }
echo "walkthrough done: job $JOB, payment $PAY"
