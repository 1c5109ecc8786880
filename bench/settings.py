"""Bench-only settings: Shiftboard's own settings (config.settings.base, read from
the environment exactly as in production) plus django-cachalot and the baselines,
with the bench URL configuration. Used only by `make bench`."""
from config.settings.base import *  # noqa: F401,F403
from config.settings.base import CACHES, INSTALLED_APPS, MIDDLEWARE

INSTALLED_APPS = [*INSTALLED_APPS, "cachalot"]

# Cachalot is global once installed: this middleware (outermost, so it also covers
# the token lookup) disables it for every request outside /bench/cachalot/.
#
# The slow-query hook's toggle (X-Bench-Slow-Query-Hook: on / off) is outermost of
# all, so everything the request does, the Server-Timing counter included, runs in
# the state asked for (bench/middleware.py).
MIDDLEWARE = [
    "bench.middleware.SlowQueryHookToggleMiddleware",
    "bench.middleware.CacheBookkeepingHeaderMiddleware",
    "bench.middleware.CachalotOnlyUnderPrefixMiddleware",
    *MIDDLEWARE,
]

ROOT_URLCONF = "bench.urls"

# Cachalot's entries live beside Shiftboard's, under their own key prefix, so the
# two caches never share keys.
CACHES = {**CACHES, "cachalot": {**CACHES["default"], "KEY_PREFIX": "cachalot"}}
if CACHES["cachalot"]["BACKEND"].endswith("LocMemCache"):
    CACHES["cachalot"]["LOCATION"] = "bench-cachalot"
CACHALOT_CACHE = "cachalot"
CACHALOT_TIMEOUT = 300

# The bench forces a miss with a unique ``_b=`` parameter that no view reads; the
# response cache drops such parameters from its keys (one resource, one entry),
# so the bench keeps this one (docs/cache.md, "One resource, one cache identity").
RESPONSE_CACHE_KEY_EXTRA_PARAMS = ("_b",)

# Cachalot's raw-SQL write detector wraps every cursor.execute() in the process: the
# statement lowered and searched for INSERT/UPDATE/DELETE/... (about 0.1 ms for a long
# SELECT), whatever the request, since cachalot_disabled() does not reach it. ORM
# statements skip it (cachalot marks them), so it taxed only the statements run on a
# raw cursor: Shiftboard's prepared reads (core/prepared.py), which production never
# runs with cachalot installed. Off: no code in this project writes through a raw
# cursor (tests/bench/test_settings.py checks it), and every write (c) sees goes
# through the ORM, whose write compiler cachalot still patches to invalidate.
CACHALOT_INVALIDATE_RAW = False
