#!/usr/bin/env bash
# The scale proofs (docs/scaling.md, "Proofs"): start scripts/topology.py's servers in a
# run directory of their own, run the proofs against them, stop them (also on failure).
#   1. read replica (recovery_min_apply_delay APPLY_DELAY_MS, default 500 ms), cache on
#      Redis Sentinel: a write followed at once by reads, the replica provably behind
#      (tests/scale/test_replica_reads.py), and the randomized multi-process
#      write-then-read test (tests/cache/test_multiprocess.py, MULTIPROCESS_MIN_PAIRS
#      pairs, default 300) -> 0 stale, replica reads counted, no write on the replica;
#      replicas that hang (tests/scale/test_replica_hang.py) -> one bounded wait, then skipped;
#      a replica of its own, promoted (tests/scale/test_replica_promoted.py) -> no read
#      reaches it after the promotion, /readyz and the gauge say not_replicating;
#   2. Sentinel: bumps of a process that knows the cache is failing reach the paused
#      master before a later read (tests/scale/test_sentinel_inflight.py); the master
#      killed under a write/read loop, then again while idle
#      (tests/scale/test_sentinel_failover.py) -> 0 5xx, 0 stale;
#   3. Redis Cluster: the whole cache test suite, with the multi-process stale-read test
#      and the floor scripts' tests, on a three-master cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export TOPOLOGY_DIR="${TOPOLOGY_DIR:-$(mktemp -d /tmp/shiftboard-scale-XXXXXX)}"
python3 scripts/topology.py start --apply-delay-ms "${APPLY_DELAY_MS:-500}"
trap 'python3 scripts/topology.py stop >/dev/null 2>&1 || true' EXIT
eval "$(python3 scripts/topology.py env)"
unset REDIS_URL
export MULTIPROCESS_MIN_PAIRS="${MULTIPROCESS_MIN_PAIRS:-300}"
PYTEST=("$PY" -m pytest -q -s -p no:warnings)

echo "== scale 1/3: a lagging read replica (Redis Sentinel as the cache)"
env -u REDIS_CLUSTER_NODES "${PYTEST[@]}" tests/scale/test_replica_reads.py tests/scale/test_replica_hang.py \
  tests/scale/test_replica_promoted.py tests/cache/test_multiprocess.py

echo "== scale 2/3: Redis Sentinel failover under load and while idle"
env -u REDIS_CLUSTER_NODES -u DATABASE_REPLICA_URLS "${PYTEST[@]}" tests/scale/test_sentinel_inflight.py \
  tests/scale/test_sentinel_failover.py

echo "== scale 3/3: the cache test suite on a Redis Cluster"
env -u REDIS_SENTINELS -u REDIS_SENTINEL_MASTER -u DATABASE_REPLICA_URLS "${PYTEST[@]}" tests/cache

python3 scripts/topology.py status
echo "== scale proofs passed"
