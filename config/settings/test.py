"""Settings for the test suite: the same settings, with test-friendly defaults for
variables the caller left unset (the suite also runs against PostgreSQL and Redis
when DATABASE_URL / REDIS_URL are set)."""
import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-0123456789")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("DEBUG_TOOLBAR", "0")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
# The test client's host and live servers started by tests (pytest-django's live_server).
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("PASSWORD_HASHERS", "django.contrib.auth.hashers.MD5PasswordHasher")
os.environ.setdefault("CACHE_KEY_PREFIX", f"sbtest{os.getpid()}")
# The suite seeds throwaway test databases (tests/tools, the bench smoke test).
os.environ.setdefault("ALLOW_DEMO_PASSWORD", "1")

from .base import *  # noqa: E402,F401,F403

# The test-wide N+1 guard (tests/conftest.py): django-zeal patches the ORM when its
# app loads; its middleware gives each request its own detection context, and
# detections are reported (not raised, so DRF cannot turn them into a 500 response)
# to the guard, which fails the test.
INSTALLED_APPS = [*INSTALLED_APPS, "zeal"]  # noqa: F405
MIDDLEWARE = ["zeal.middleware.zeal_middleware", *MIDDLEWARE]  # noqa: F405
ZEAL_RAISE = False
