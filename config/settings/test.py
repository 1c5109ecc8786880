"""Settings for the test suite: the same settings, with test-friendly defaults for
variables the caller left unset (the suite also runs against PostgreSQL and Redis
when DATABASE_URL / REDIS_URL are set)."""
import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-0123456789")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("DEBUG_TOOLBAR", "0")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("PASSWORD_HASHERS", "django.contrib.auth.hashers.MD5PasswordHasher")
os.environ.setdefault("CACHE_KEY_PREFIX", f"sbtest{os.getpid()}")

from .base import *  # noqa: E402,F401,F403
