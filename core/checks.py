"""System checks of the deployment (``manage.py check --deploy``).

A per-process cache with several processes serves stale reads: each process
keeps its own response entries and its own version counters, and a write bumps
the counters of the process that made it only. Another worker then answers from
its own copy (today: two workers with the local-memory cache served a profile
as it was before the write). The response cache is only correct when every
process shares one cache: Redis (``REDIS_URL``).

The refusal is made twice: here, so that ``check --deploy`` (CI, a deploy
pipeline) fails, and in gunicorn's ``on_starting`` hook (config/gunicorn.py),
which knows the real worker count and refuses to start.
"""
from __future__ import annotations

import os

from django.core import checks
from django.core.checks import Error, Tags, register

# Backends whose data lives in one process (or nowhere, and then nothing is wrong).
PER_PROCESS_BACKENDS = ("django.core.cache.backends.locmem.LocMemCache",)


def served_workers() -> int:
    """The worker count ``make serve`` starts with: WEB_CONCURRENCY (default 2)."""
    try:
        return int(os.environ.get("WEB_CONCURRENCY", "2"))
    except ValueError:
        return 2


def per_process_cache_problem(*, workers: int, settings=None) -> str | None:
    """Why this configuration would serve stale reads with ``workers`` processes,
    or None. Reads settings only (no app is loaded), so gunicorn's master can ask."""
    if settings is None:
        from django.conf import settings
    if settings.DEBUG or workers <= 1:
        return None
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if backend not in PER_PROCESS_BACKENDS:
        return None
    return (
        f"the cache is per process ({backend.rsplit('.', 1)[-1]}: REDIS_URL is not set) and "
        f"{workers} workers would each keep their own cached responses and version counters, "
        "so a write in one worker leaves stale reads in the others. Set REDIS_URL to a Redis "
        "shared by every process, or run a single worker (WEB_CONCURRENCY=1)."
    )


@register(Tags.caches, deploy=True)
def check_shared_cache(app_configs, **kwargs):
    problem = per_process_cache_problem(workers=served_workers())
    if problem:
        return [Error(f"Per-process cache with several workers: {problem}", id="shiftboard.E001")]
    return []


@register(Tags.security, deploy=True)
def check_demo_password(app_configs, **kwargs):
    from django.conf import settings

    if getattr(settings, "ALLOW_DEMO_PASSWORD", False):
        return [
            checks.Warning(
                "ALLOW_DEMO_PASSWORD is on: manage.py seed may create accounts whose password is published "
                "in the README. Only for a throwaway database; unset it in production.",
                id="shiftboard.W002",
            )
        ]
    return []
