"""Load from a separate process: wrk (C, from Debian's packages) driven by a
generated Lua script, and small sequential probes over http.client.

wrk's Lua script picks a random request from a fixed list (path + optional token)
for every request, counts ``X-Cache`` answers per thread and prints one JSON line
with throughput, latency percentiles and errors at the end. ``bust=True`` appends a
unique query parameter to every request, so every Shiftboard request is a cache
MISS (the cold path: database, then a store into Redis)."""
from __future__ import annotations

import http.client
import json
import re
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

LUA_TEMPLATE = r"""
local reqs = {%(reqs)s}
local bust = %(bust)s
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + tid * 7919)
  hits, misses, other, not_modified = 0, 0, 0, 0
  seq = 0
end

function request()
  local r = reqs[math.random(#reqs)]
  local path = r[1]
  if bust then
    seq = seq + 1
    local sep = "?"
    if string.find(path, "?", 1, true) then sep = "&" end
    path = path .. sep .. "_b=" .. tid .. "x" .. seq .. "x" .. math.random(1, 1000000000)
  end
  local headers = {}
  if r[2] then headers["Authorization"] = r[2] end
  if r[3] then headers["If-None-Match"] = r[3] end
  return wrk.format("GET", path, headers)
end

function response(status, headers, body)
  if status == 304 then not_modified = not_modified + 1 end
  local x = headers["X-Cache"] or headers["x-cache"]
  if x == "HIT" then hits = hits + 1
  elseif x == "MISS" then misses = misses + 1
  else other = other + 1 end
end

function done(summary, latency, requests)
  local h, m, o, nm = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    h = h + t:get("hits"); m = m + t:get("misses"); o = o + t:get("other")
    nm = nm + t:get("not_modified")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%%d,"duration_us":%%d,"bytes":%%d,"errors_connect":%%d,"errors_read":%%d,' ..
    '"errors_write":%%d,"errors_status":%%d,"errors_timeout":%%d,"p50_us":%%d,"p90_us":%%d,"p95_us":%%d,' ..
    '"p99_us":%%d,"mean_us":%%.1f,"max_us":%%d,"hits":%%d,"misses":%%d,"no_header":%%d,' ..
    '"not_modified":%%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
    latency.mean, latency.max, h, m, o, nm))
end
"""


@dataclass(frozen=True)
class Req:
    """One request the load may send: a path (with query), an optional token and
    an optional ``If-None-Match`` (a revalidation)."""

    path: str
    token: str | None = None
    etag: str | None = None


def _lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def lua_script(reqs: list[Req], bust: bool) -> str:
    items = ",".join(
        "{" + _lua_string(r.path) + "," + (_lua_string(f"Token {r.token}") if r.token else "nil") + ","
        + (_lua_string(r.etag) if r.etag else "nil") + "}"
        for r in reqs
    )
    return LUA_TEMPLATE % {"reqs": items, "bust": "true" if bust else "false"}


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(base_url: str, reqs: list[Req], *, duration: float, connections: int, threads: int,
            bust: bool = False) -> dict:
    """One bounded wrk run; returns its JSON summary (throughput, percentiles, errors,
    X-Cache counts)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua_script(reqs, bust))
        script = f.name
    try:
        cmd = [
            "wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s",
            "-s", script, base_url,
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    finally:
        Path(script).unlink(missing_ok=True)
    match = re.search(r"^BENCHJSON (.*)$", out.stdout, re.M)
    if not match:
        raise RuntimeError(f"wrk gave no summary: {out.stdout[-500:]} {out.stderr[-500:]}")
    data = json.loads(match.group(1))
    seconds = data["duration_us"] / 1e6
    errors = sum(data[k] for k in data if k.startswith("errors_"))
    done = data["requests"] > 0  # no request finished within the run: no latency to report
    data.update(
        rps=data["requests"] / seconds if seconds else 0.0,
        errors=errors,
        p50_ms=data["p50_us"] / 1000 if done else None,
        p95_ms=data["p95_us"] / 1000 if done else None,
        p99_ms=data["p99_us"] / 1000 if done else None,
    )
    return data


# --- sequential probes: query counts and server-side times --------------------------

_SERVER_TIMING = re.compile(r'db;dur=([\d.]+);desc="(\d+) queries"')
_APP_DUR = re.compile(r"app;dur=([\d.]+)")


def _bookkeeping(header: str) -> dict[str, float]:
    """``lookup=0.2,ids=0.8`` (bench/middleware.py) as {step: ms}."""
    out = {}
    for part in header.split(","):
        step, _, ms = part.partition("=")
        try:
            out[step.strip()] = float(ms)
        except ValueError:
            continue
    return out


class Probe:
    """A keep-alive HTTP/1.1 client for sequential requests (warm-up, probes, checks)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.conn = http.client.HTTPConnection(host, port, timeout=30)

    def request(self, method: str, path: str, token: str | None = None, body=None, headers=None):
        hdrs = {"Accept": "application/json"}
        if token:
            hdrs["Authorization"] = f"Token {token}"
        if body is not None:
            hdrs["Content-Type"] = "application/json"
            body = json.dumps(body)
        hdrs.update(headers or {})
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (http.client.HTTPException, ConnectionError, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                if attempt == 2:
                    raise
        timing = resp.getheader("Server-Timing") or ""
        q = _SERVER_TIMING.search(timing)
        a = _APP_DUR.search(timing)
        return {
            "status": resp.status,
            "body": raw,
            "queries": int(q.group(2)) if q else None,
            "db_ms": float(q.group(1)) if q else None,
            "app_ms": float(a.group(1)) if a else None,
            "x_cache": resp.getheader("X-Cache"),
            "etag": resp.getheader("ETag"),
            "bookkeeping": _bookkeeping(resp.getheader("X-Cache-Bookkeeping") or ""),
            # The slow-query hook's state the request ran with, when the bench asked
            # for one (X-Bench-Slow-Query-Hook, bench/middleware.py).
            "hook": resp.getheader("X-Bench-Slow-Query-Hook"),
        }

    def close(self):
        self.conn.close()


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None
