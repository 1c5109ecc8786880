"""The realistic mix: a Python multiprocess load driver (it needs per-request tokens
and state, which wrk's Lua cannot carry across requests).

Each driver process keeps two HTTP connections: requests go out on the first; after
every write, the affected resource is read back on the second (the server has
several worker processes, so that read may land in any of them) and compared with
what the write returned: a mismatch is a *stale read*.

95% of operations are reads spread over the six benchmarked endpoints, skewed
towards popular pages and ids, by many users (tokens on private endpoints, and on
half of the public reads); 5% are writes through Shiftboard's write endpoints, the
same for every variant (apply, accept, pay, review, edit job). The reads, including
the read-backs, go to the variant's own endpoints.

The driver's own ceiling is measured by running it against the floor."""
from __future__ import annotations

import http.client
import json
import multiprocessing
import random
import time
import uuid

READ_WEIGHTS = [
    ("job_list", 0.30), ("job_detail", 0.25), ("profile", 0.15),
    ("reviews", 0.10), ("payments", 0.10), ("saved", 0.10),
]
WRITE_SHARE = 0.05
WRITE_KINDS = ["apply", "accept", "pay", "review", "edit"]


class Conn:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.c = http.client.HTTPConnection(host, port, timeout=30)

    def call(self, method, path, token=None, body=None, headers=None):
        hdrs = {"Accept": "application/json"}
        if token:
            hdrs["Authorization"] = f"Token {token}"
        data = None
        if body is not None:
            hdrs["Content-Type"] = "application/json"
            data = json.dumps(body)
        hdrs.update(headers or {})
        start = time.perf_counter()
        # A GET is tried again once on a new connection: the server closes a
        # keep-alive connection left idle past its keepalive (gthread workers: 2 s),
        # which is what the read-back connection is between two writes. A write is
        # not retried (it may have been done).
        for _attempt in (1, 2) if method == "GET" else (1,):
            try:
                self.c.request(method, path, body=data, headers=hdrs)
                r = self.c.getresponse()
                raw = r.read()
                break
            except (http.client.HTTPException, OSError):
                self.c.close()
                self.c = http.client.HTTPConnection(self.host, self.port, timeout=30)
        else:
            return None, None, None, (time.perf_counter() - start) * 1000
        return r.status, raw, r.getheader("X-Cache"), (time.perf_counter() - start) * 1000


def payload(raw):
    """The object or list of a response, Shiftboard's envelope or plain DRF's."""
    try:
        body = json.loads(raw)
    except (ValueError, TypeError):
        return None
    if isinstance(body, dict) and "success" in body and "data" in body:
        return body["data"]
    if isinstance(body, dict) and "results" in body:
        return body["results"]
    return body


def _pick(seq, rnd):
    # Popular items first: index skewed towards 0.
    return seq[min(len(seq) - 1, int(len(seq) * rnd.random() ** 2))]


def _read_path(kind, prefix, targets, rnd):
    """(path, token) of one read of ``kind``."""
    reader_token = None
    if kind in ("job_list", "job_detail", "profile", "reviews") and rnd.random() < 0.5:
        reader_token = _pick(targets["saved_users"] or targets["payment_users"], rnd)[1]
    if kind == "job_list":
        return f"{prefix}jobs/?page={1 + int(3 * rnd.random() ** 2)}", reader_token
    if kind == "job_detail":
        return f"{prefix}jobs/{_pick(targets['jobs'], rnd)}/", reader_token
    if kind == "profile":
        return f"{prefix}users/{_pick(targets['profiles'], rnd)}/", reader_token
    if kind == "reviews":
        return f"{prefix}users/{_pick(targets['reviewed'], rnd)}/reviews/", reader_token
    if kind == "payments":
        uid, token = _pick(targets["payment_users"], rnd)
        return f"{prefix}users/{uid}/payments/", token
    uid, token = _pick(targets["saved_users"], rnd)
    return f"{prefix}users/me/saved-jobs/", token


class Worker:
    def __init__(self, index, host, port, prefix, api, targets, pools, fixed=None, bust=False):
        self.rnd = random.Random(1000 + index)
        self.index = index
        self.main = Conn(host, port)
        self.verify = Conn(host, port)
        self.prefix, self.api, self.targets, self.pools = prefix, api, targets, pools
        self.fixed, self.bust = fixed, bust
        self.lat = []
        self.stats = {"requests": 0, "reads": 0, "writes": 0, "errors": 0, "hits": 0, "misses": 0,
                      "stale": 0, "checked": 0, "write_failed": 0, "pool_exhausted": 0,
                      "by_kind": {}, "stale_detail": [], "write_fail_detail": []}

    def _record(self, kind, status, xcache, ms, ok_statuses=(200,)):
        s = self.stats
        s["requests"] += 1
        self.lat.append(ms)
        k = s["by_kind"].setdefault(kind, {"n": 0, "errors": 0, "ms": 0.0, "hits": 0, "misses": 0})
        k["n"] += 1
        k["ms"] += ms
        if status not in ok_statuses:
            s["errors"] += 1
            k["errors"] += 1
        if xcache == "HIT":
            s["hits"] += 1
            k["hits"] += 1
        elif xcache == "MISS":
            s["misses"] += 1
            k["misses"] += 1

    def read(self, kind, conn=None, path=None, token=None):
        if path is None:
            path, token = _read_path(kind, self.prefix, self.targets, self.rnd)
        status, raw, xcache, ms = (conn or self.main).call("GET", path, token)
        self.stats["reads"] += 1
        self._record(kind, status, xcache, ms)
        return status, raw

    def write(self, kind, method, path, token, body, headers=None):
        status, raw, xcache, ms = self.main.call(method, path, token, body, headers)
        self.stats["writes"] += 1
        self._record(kind, status, xcache, ms, ok_statuses=(200, 201))
        if status not in (200, 201):
            self.stats["write_failed"] += 1
            if len(self.stats["write_fail_detail"]) < 5:
                self.stats["write_fail_detail"].append([kind, status, (raw or b"")[:200].decode(errors="replace")])
            return None
        return payload(raw)

    def check(self, kind, ok: bool, what: str):
        self.stats["checked"] += 1
        if not ok:
            self.stats["stale"] += 1
            if len(self.stats["stale_detail"]) < 5:
                self.stats["stale_detail"].append([kind, what])

    def do_write(self, kind):
        pool = self.pools.get(kind) or []
        if not pool:
            self.stats["pool_exhausted"] += 1
            return self.read(_pick([k for k, _ in READ_WEIGHTS], self.rnd))
        item = pool.pop() if kind != "edit" else self.rnd.choice(pool)
        p, api = self.prefix, self.api
        if kind == "apply":
            status, raw = self.read("job_detail", path=f"{p}jobs/{item['job']}/", token=item["token"])
            before = (payload(raw) or {}).get("applications_count") if status == 200 else None
            made = self.write(kind, "POST", f"{api}jobs/{item['job']}/apply/", item["token"], {"cover_note": "bench"})
            if made is not None and before is not None:
                status, raw = self.read("job_detail", conn=self.verify, path=f"{p}jobs/{item['job']}/")
                after = (payload(raw) or {}).get("applications_count", -1)
                self.check(kind, after >= before + 1, f"job {item['job']} applications_count {before}->{after}")
        elif kind == "accept":
            made = self.write(kind, "POST", f"{api}applications/{item['application']}/accept/", item["token"], {})
            if made is not None:
                status, raw = self.read("job_detail", conn=self.verify, path=f"{p}jobs/{item['job']}/")
                st = (payload(raw) or {}).get("status")
                self.check(kind, st == "filled", f"job {item['job']} status {st} after accept")
        elif kind == "pay":
            body = {"job": item["job"], "recipient": item["recipient"], "amount": "40.00",
                    "currency": item["currency"]}
            made = self.write(kind, "POST", f"{api}payments/", item["token"], body,
                              {"Idempotency-Key": uuid.uuid4().hex})
            if made is not None:
                status, raw = self.read("payments", conn=self.verify, path=f"{p}users/{item['payer']}/payments/",
                                        token=item["token"])
                ids = [row.get("id") for row in (payload(raw) or []) if isinstance(row, dict)]
                self.check(kind, made.get("id") in ids, f"payment {made.get('id')} not in payer's page 1")
        elif kind == "review":
            body = {"job": item["job"], "reviewed": item["reviewed"], "rating": self.rnd.randint(3, 5),
                    "comment": "bench"}
            made = self.write(kind, "POST", f"{api}reviews/", item["token"], body)
            if made is not None:
                status, raw = self.read("reviews", conn=self.verify, path=f"{p}users/{item['reviewed']}/reviews/")
                ids = [row.get("id") for row in (payload(raw) or []) if isinstance(row, dict)]
                self.check(kind, made.get("id") in ids, f"review {made.get('id')} not in reviewed's page 1")
        elif kind == "edit":
            title = f"Bench edit {uuid.uuid4().hex[:12]}"
            made = self.write(kind, "PATCH", f"{api}jobs/{item['job']}/", item["token"], {"title": title})
            if made is not None:
                status, raw = self.read("job_detail", conn=self.verify, path=f"{p}jobs/{item['job']}/")
                got = (payload(raw) or {}).get("title")
                self.check(kind, got == title, f"job {item['job']} title {got!r} != {title!r}")

    def run(self, deadline):
        kinds = [k for k, _ in READ_WEIGHTS]
        weights = [w for _, w in READ_WEIGHTS]
        n_writes = self.index  # each process starts its round of write kinds at another kind
        while time.perf_counter() < deadline:
            if self.fixed:
                path, token = self.rnd.choice(self.fixed)
                if self.bust:
                    path += f"{'&' if '?' in path else '?'}_b={uuid.uuid4().hex}"
                status, raw, xcache, ms = self.main.call("GET", path, token)
                self._record("fixed", status, xcache, ms)
                continue
            if self.rnd.random() < WRITE_SHARE:
                self.do_write(WRITE_KINDS[n_writes % len(WRITE_KINDS)])
                n_writes += 1
            else:
                self.read(self.rnd.choices(kinds, weights)[0])
        return self.lat, self.stats


def _process(args):
    index, host, port, prefix, api, targets, pools, fixed, bust, start_at, duration = args
    worker = Worker(index, host, port, prefix, api, targets, pools, fixed, bust)
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = time.perf_counter() + duration
    return worker.run(deadline)


def _split(pools: dict, n: int, i: int) -> dict:
    """Driver process ``i`` of ``n`` gets every n-th item of each pool: no two
    processes apply with the same worker to the same job, accept the same
    application or write the same review."""
    return {kind: list(items[i::n]) or list(items if kind == "edit" else []) for kind, items in pools.items()}


def run_mix(host, port, *, prefix, targets, pools, duration, processes, api="/api/v1/", fixed=None,
            bust=False) -> dict:
    """Runs the mix for ``duration`` seconds with ``processes`` driver processes;
    returns throughput, latency percentiles, errors, cache hits and stale reads.
    With ``fixed`` (a list of (path, token)), every request is a GET of one of them
    instead (the floor, or wrk's job when wrk is missing)."""
    start_at = time.time() + 0.5
    jobs = [
        (i, host, port, prefix, api, targets, _split(pools or {}, processes, i), fixed, bust, start_at, duration)
        for i in range(processes)
    ]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(processes) as pool:
        results = pool.map(_process, jobs)
    lat = sorted(ms for part, _ in results for ms in part)
    total = {"requests": 0, "reads": 0, "writes": 0, "errors": 0, "hits": 0, "misses": 0, "stale": 0,
             "checked": 0, "write_failed": 0, "pool_exhausted": 0, "by_kind": {}, "stale_detail": [],
             "write_fail_detail": []}
    for _, s in results:
        for key in ("requests", "reads", "writes", "errors", "hits", "misses", "stale", "checked",
                    "write_failed", "pool_exhausted"):
            total[key] += s[key]
        for kind, k in s["by_kind"].items():
            t = total["by_kind"].setdefault(kind, {"n": 0, "errors": 0, "ms": 0.0, "hits": 0, "misses": 0})
            for f in ("n", "errors", "ms", "hits", "misses"):
                t[f] += k[f]
        total["stale_detail"] += s["stale_detail"]
        total["write_fail_detail"] += s["write_fail_detail"]

    def pct(p):
        return lat[min(len(lat) - 1, int(len(lat) * p / 100))] if lat else None

    looked_up = total["hits"] + total["misses"]
    total.update(
        duration_s=duration, processes=processes,
        rps=total["requests"] / duration,
        p50_ms=pct(50), p95_ms=pct(95), p99_ms=pct(99),
        hit_ratio=(total["hits"] / looked_up) if looked_up else None,
        write_share=(total["writes"] / total["requests"]) if total["requests"] else 0.0,
    )
    for k in total["by_kind"].values():
        k["mean_ms"] = k["ms"] / k["n"] if k["n"] else None
    total["stale_detail"] = total["stale_detail"][:10]
    total["write_fail_detail"] = total["write_fail_detail"][:10]
    return total
