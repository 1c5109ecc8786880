"""Settings for every environment, read from environment variables once, here.

Variables (names are part of the contract, see README):
DATABASE_URL, DATABASE_REPLICA_URLS, REDIS_URL, REDIS_SENTINELS, REDIS_SENTINEL_MASTER,
REDIS_CLUSTER_NODES, SECRET_KEY, DEBUG, ALLOWED_HOSTS, PERF_HEADERS,
plus the deployment ones documented in the README (CSRF_TRUSTED_ORIGINS,
SECURE_SSL_REDIRECT, SECURE_HSTS_SECONDS, ...). Production adds no behaviour of
its own: it is these same settings with DEBUG unset.
"""
import ipaddress
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY to a long random string for any "
            "non-development start, or set DEBUG=1 for local development."
        )
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789abcdef"

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Response headers with query counts and timings (docs/API.md "Profiling").
PERF_HEADERS = env.bool("PERF_HEADERS", default=DEBUG)
# The Debug Toolbar needs DEBUG; it can be switched off explicitly (benchmarks, tests).
DEBUG_TOOLBAR = env.bool("DEBUG_TOOLBAR", default=DEBUG)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served from our own static files
    "django_prometheus",
    "core",
    "accounts",
    "jobs",
    "payments",
    "ratings",
    # Above the four apps: seed, explain_plans (may import every app; none imports it).
    "tools",
]

MIDDLEWARE = [
    "core.middleware.RequestIDMiddleware",
    # /livez and /readyz, before the SSL redirect, host check and metrics (core/health.py).
    "core.health.ProbeMiddleware",
    # Counts every request but the probes (a refused Host included).
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # ALLOWED_HOSTS for every other request, before anything that can answer (the fast path).
    "core.middleware.AllowedHostsMiddleware",
    # Cache-Control and Vary for HTTP caches, outside every path that answers.
    "core.middleware.HTTPCachePolicyMiddleware",
    "core.middleware.ServerTimingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Anonymous public cache hits answered here, before sessions/auth/DRF (docs/cache.md, "The fast path").
    "core.cache.middleware.AnonymousHitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

if DEBUG and DEBUG_TOOLBAR:
    INSTALLED_APPS.append("debug_toolbar")
    MIDDLEWARE.insert(MIDDLEWARE.index("core.middleware.ServerTimingMiddleware") + 1,
                      "debug_toolbar.middleware.DebugToolbarMiddleware")
    INTERNAL_IPS = ["127.0.0.1", "::1"]
    # Collapsed at start: the toolbar never covers the admin's or the browsable API's controls.
    # UPDATE_ON_FETCH: a page's own fetch() requests (e.g. a JSON GET, a POST) show in
    # the toolbar as they happen, so the response cache panel can be read for them.
    DEBUG_TOOLBAR_CONFIG = {
        "SHOW_TOOLBAR_CALLBACK": "core.middleware.show_toolbar",
        "SHOW_COLLAPSED": True,
        "UPDATE_ON_FETCH": True,
    }
    # The toolbar's default panels plus the response cache's (core/cache/panel.py).
    from debug_toolbar.settings import PANELS_DEFAULTS

    DEBUG_TOOLBAR_PANELS = [*PANELS_DEFAULTS, "core.cache.panel.ResponseCachePanel"]

ROOT_URLCONF = env.str("ROOT_URLCONF", default="config.urls")
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: PostgreSQL through psycopg 3 when DATABASE_URL is set, else a SQLite file.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
# DATABASE_POOL=1 (PostgreSQL only): Django's psycopg connection pool, one per
# process, DATABASE_POOL_MIN_SIZE..DATABASE_POOL_MAX_SIZE connections (defaults 1
# and GUNICORN_THREADS, i.e. one per request a worker serves at once), a request
# waiting at most DATABASE_POOL_TIMEOUT seconds for one. Without it: one persistent
# connection per thread (CONN_MAX_AGE). docs/operations.md has the sizing and PgBouncer.
DATABASE_POOL = env.bool("DATABASE_POOL", default=False)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 3
    if DATABASE_POOL:
        # A pooled connection goes back to the pool at the end of each request.
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=1),
            "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=env.int("GUNICORN_THREADS", default=8)),
            "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
        }
    else:
        # Persistent connections with a health check: one connect per process, not per request.
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    # Behind PgBouncer in transaction mode (docs/operations.md): no server-side cursors.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.bool("DISABLE_SERVER_SIDE_CURSORS", default=False)
# Statements at least this slow are logged and counted (core/db_instrumentation.py); 0: off.
SLOW_QUERY_MS = env.int("SLOW_QUERY_MS", default=100)
# The same backends wrapped by django-prometheus, so /metrics counts queries, their
# time and errors (django_db_execute_total, django_db_query_duration_seconds, ...).
# Code that needs the database kind checks ``connection.vendor``, not ENGINE.
_PROMETHEUS_DB_ENGINES = {
    # core.primary_db: django-prometheus's, whose pool checks a connection without a
    # round trip where a cheaper look can tell (DATABASE_POOL=1).
    "django.db.backends.postgresql": "core.primary_db",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}
# Read replicas (docs/scaling.md): DATABASE_REPLICA_URLS, comma-separated, one alias
# each (replica_0, replica_1, ...). core.replicas.ReplicaRouter sends a read there only
# when the replica has replayed every write the read must see; writes, locking reads
# and reads in a transaction stay on the primary. A replica that is down or hangs is
# never waited on for long (core/replica_db): a short connect timeout (libpq's minimum
# is 2 s), and REPLICA_READ_TIMEOUT seconds for any answer (kept on this side, and as
# the server's statement_timeout); then it is skipped until a probe every
# REPLICA_PROBE_SECONDS finds it answering.
REPLICA_READ_TIMEOUT = env.float("REPLICA_READ_TIMEOUT", default=2.0)
REPLICA_PROBE_SECONDS = env.float("REPLICA_PROBE_SECONDS", default=5.0)
for _index, _url in enumerate(env.list("DATABASE_REPLICA_URLS", default=[])):
    _replica = environ.Env.db_url_config(_url)
    if _replica["ENGINE"] == "django.db.backends.postgresql":
        _replica["ENGINE"] = "core.replica_db"  # PostgreSQL with the bounds above
    _replica["CONN_MAX_AGE"] = DATABASES["default"].get("CONN_MAX_AGE", 0)
    _replica["CONN_HEALTH_CHECKS"] = True
    _options = _replica.setdefault("OPTIONS", {})
    _options["connect_timeout"] = env.int("REPLICA_CONNECT_TIMEOUT", default=2)
    _timeout_ms = int(REPLICA_READ_TIMEOUT * 1000)
    if not DATABASES["default"].get("DISABLE_SERVER_SIDE_CURSORS"):
        # (Not behind PgBouncer, which refuses an ``options`` startup parameter.)
        _options["options"] = f"{_options.get('options', '')} -c statement_timeout={_timeout_ms}".strip()
    _options["tcp_user_timeout"] = _timeout_ms  # unacknowledged data: a host gone silent
    if "pool" in DATABASES["default"].get("OPTIONS", {}):  # DATABASE_POOL: a pool per replica too
        _replica["OPTIONS"]["pool"] = dict(DATABASES["default"]["OPTIONS"]["pool"])
        # Waiting for a connection the pool cannot open (a hung replica): no longer than
        # connecting does. And no pool check: psycopg_pool's would wait on a hung
        # server without a bound (a broken connection fails its first statement instead).
        _replica["OPTIONS"]["pool"]["timeout"] = _options["connect_timeout"] + 1.0
        _replica["CONN_HEALTH_CHECKS"] = False
    _replica["DISABLE_SERVER_SIDE_CURSORS"] = DATABASES["default"].get("DISABLE_SERVER_SIDE_CURSORS", False)
    # Under the test runner a replica is the primary's test database.
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES[f"replica_{_index}"] = _replica
if len(DATABASES) > 1:
    DATABASE_ROUTERS = ["core.replicas.ReplicaRouter"]
for _alias in DATABASES:
    DATABASES[_alias]["ENGINE"] = _PROMETHEUS_DB_ENGINES.get(DATABASES[_alias]["ENGINE"], DATABASES[_alias]["ENGINE"])
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache: Redis (shared by every process), else local memory. Three ways to reach it
# (docs/scaling.md), the first one set wins: REDIS_CLUSTER_NODES (a Redis Cluster,
# comma-separated host:port of any of its nodes), REDIS_SENTINELS + REDIS_SENTINEL_MASTER
# (Sentinel: comma-separated host:port of the sentinels and the master's name), REDIS_URL.
REDIS_URL = env.str("REDIS_URL", default="")
REDIS_SENTINELS = env.list("REDIS_SENTINELS", default=[])
REDIS_SENTINEL_MASTER = env.str("REDIS_SENTINEL_MASTER", default="shiftboard")
REDIS_CLUSTER_NODES = env.list("REDIS_CLUSTER_NODES", default=[])
CACHE_IS_REDIS = bool(REDIS_URL or REDIS_SENTINELS or REDIS_CLUSTER_NODES)
if CACHE_IS_REDIS:
    _redis_options = {
        "CLIENT_CLASS": "django_redis.client.DefaultClient",
        # Short timeouts: with Redis down or hanging, a request falls back to
        # the database after at most this long instead of hanging.
        "SOCKET_CONNECT_TIMEOUT": env.float("REDIS_CONNECT_TIMEOUT", default=0.2),
        "SOCKET_TIMEOUT": env.float("REDIS_SOCKET_TIMEOUT", default=0.2),
        "CONNECTION_POOL_KWARGS": {"max_connections": 50, "retry_on_timeout": False},
    }
    _redis_location = REDIS_URL
    # While the cache fails, each process checks it this often (core/cache/outage.py).
    CACHE_PROBE_INTERVAL_SECONDS = env.float("CACHE_PROBE_INTERVAL_SECONDS", default=0.05)
    # On a cluster: how many hash-tag groups the keys spread over (core/cache/cluster.py).
    CACHE_CLUSTER_GROUPS = env.int("CACHE_CLUSTER_GROUPS", default=12)
    if REDIS_CLUSTER_NODES:
        _redis_options["CLIENT_CLASS"] = "core.cache.cluster.ClusterClient"
        _redis_options["CLUSTER_NODES"] = REDIS_CLUSTER_NODES
        _redis_location = "redis-cluster://" + ",".join(REDIS_CLUSTER_NODES)
    elif REDIS_SENTINELS:
        _redis_options["CLIENT_CLASS"] = "django_redis.client.SentinelClient"
        _redis_options["CONNECTION_FACTORY"] = "django_redis.pool.SentinelConnectionFactory"
        # The master only (no "replica" URL): a replica may be behind on version
        # counters, and a counter read behind is a stale read. The pool class asks the
        # sentinels for the master and fences the cache when the master changes.
        _redis_options["CONNECTION_POOL_CLASS"] = "core.cache.sentinel.FencedSentinelConnectionPool"
        _redis_options["SENTINELS"] = [
            (host, int(port)) for host, _, port in (s.rpartition(":") for s in REDIS_SENTINELS)
        ]
        _redis_options["SENTINEL_KWARGS"] = {
            "socket_timeout": _redis_options["SOCKET_TIMEOUT"],
            "socket_connect_timeout": _redis_options["SOCKET_CONNECT_TIMEOUT"],
        }
        _redis_location = [f"redis://{REDIS_SENTINEL_MASTER}/{env.int('REDIS_SENTINEL_DB', default=0)}"]
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": _redis_location,
            "TIMEOUT": 300,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="sb"),
            "OPTIONS": _redis_options,
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "shiftboard",
            "TIMEOUT": 300,
            "OPTIONS": {"MAX_ENTRIES": 20000},
        }
    }
# /metrics (Prometheus): served to a caller whose socket address is in
# METRICS_ALLOWED_NETWORKS (CIDRs; loopback by default only with DEBUG=1) or who
# sends ``Authorization: Bearer <METRICS_TOKEN>``; 404 otherwise. No header a
# client sends (X-Forwarded-For, ...) is ever part of the decision.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list(
    "METRICS_ALLOWED_NETWORKS", default=["127.0.0.1/32", "::1/128"] if DEBUG else []
)
for _network in METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network.strip(), strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {_network!r} is not a network ({_exc}).") from None

# manage.py seed gives every user it creates the published demo password: only with
# DEBUG=1, or with this set for a throwaway database (check --deploy flags it).
ALLOW_DEMO_PASSWORD = env.bool("ALLOW_DEMO_PASSWORD", default=False)

# Upper bound on the life of any cached response (the TTL backstop).
RESPONSE_CACHE_TTL = env.int("RESPONSE_CACHE_TTL", default=300)
# The release component of every response key (core/cache/keys.py): set it to the
# deployed commit to choose when the cache turns over; unset, a digest of the code
# is used, so a new release never serves entries rendered by the previous one.
RESPONSE_CACHE_RELEASE = env.str("RESPONSE_CACHE_RELEASE", default="")
# Query parameters kept in a response's key although no view reads them (comma
# separated). Production leaves it empty: a parameter no view reads is not part of
# the key (core/cache/query.py). The bench sets "_b", its way to force a miss.
RESPONSE_CACHE_KEY_EXTRA_PARAMS = tuple(env.list("RESPONSE_CACHE_KEY_EXTRA_PARAMS", default=[]))
# Bytes of fragments each process keeps to skip re-sending an unchanged one on a
# Redis hit (core/cache/kept.py; 0 turns it off). Every hit is still validated.
RESPONSE_CACHE_KEPT_BYTES = env.int("RESPONSE_CACHE_KEPT_BYTES", default=32 * 1024 * 1024)

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = env.list(
    "PASSWORD_HASHERS",
    default=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    ],
)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Shiftboard <no-reply@shiftboard.local>")

# The payment gateway: a dotted path to a class implementing payments.gateway.PaymentGateway.
PAYMENT_GATEWAY = env.str("PAYMENT_GATEWAY", default="payments.gateway.FakeGateway")
# Platform currencies; a payment must be in its job's currency.
CURRENCIES = env.list("CURRENCIES", default=["EUR", "USD", "GBP"])

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["core.envelope.EnvelopeJSONRenderer"]
    + (["core.envelope.EnvelopeBrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_PARSER_CLASSES": ["core.parsers.StrictJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # DRF's TokenAuthentication that also keeps a token -> user entry for the
        # fast path (core/cache/callers.py).
        "core.cache.callers.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_PAGINATION_CLASS": "core.envelope.EnvelopePagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "core.envelope.envelope_exception_handler",
    "DEFAULT_METADATA_CLASS": "core.metadata.EnvelopeMetadata",
    "DEFAULT_FILTER_BACKENDS": ["core.filters.FilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "core.schema.EnvelopeAutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "login": env.str("THROTTLE_LOGIN", default="20/min"),
        # Failed logins per account (any address, API and admin alike): guessing one
        # account's password from many addresses is what a per-IP limit misses.
        "login_account": env.str("THROTTLE_LOGIN_ACCOUNT", default="10/hour"),
        "register": env.str("THROTTLE_REGISTER", default="60/min"),
        "otp": env.str("THROTTLE_OTP", default="5/min"),
        # Code checks, per user; separate from "otp" (code requests) so that the
        # 5-wrong-tries lock, not the throttle, is what a guessing client meets first.
        "otp_verify": env.str("THROTTLE_OTP_VERIFY", default="20/min"),
        "applications": env.str("THROTTLE_APPLICATIONS", default="60/hour"),
        "payments": env.str("THROTTLE_PAYMENTS", default="60/hour"),
        "reviews": env.str("THROTTLE_REVIEWS", default="60/hour"),
    },
    # Proxies in front of the app whose X-Forwarded-For entries are trusted, for the
    # per-IP throttles (login, register). 0: the socket address only; without it DRF
    # would take a client-sent X-Forwarded-For and a client could pick its own IP.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Shiftboard API",
    "DESCRIPTION": "Gig-work marketplace: clients post shifts, workers apply, clients pay, both rate.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Tags and operation ids from the path after /api/v1/ ("jobs", "jobs_create"),
    # so the docs group operations by resource and generated clients get plain names.
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # /api/docs/ and /api/redoc/ load only local assets (pinned drf-spectacular-sidecar),
    # and Swagger UI's online validator is off: the docs work without internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None, "persistAuthorization": True},
    # Envelopes, error statuses and integer ids: core/schema.py.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.postprocess_envelope_components",
    ],
    # Several models have a "status" (and "role") with different choices: name each
    # enum after its model so the schema has no hash-suffixed names (and no warning).
    # The ``id`` path converter (core/converters.py): an integer 1..2**63-1.
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}},
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "accounts.models.Role",
        "JobStatusEnum": "jobs.models.JobStatus",
        "ApplicationStatusEnum": "jobs.models.ApplicationStatus",
        "PaymentStatusEnum": "payments.models.PaymentStatus",
    },
}

# Deployment hardening: on unless DEBUG; each one can be set by the deployer.
# The header by which a TLS-terminating proxy says the client used HTTPS, e.g.
# SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto (its value must then be "https"). Unset:
# no header is trusted (a client could send it itself), only the socket's scheme.
# Set it only when every request comes through a proxy that overwrites that header.
_proxy_ssl_header = env.str("SECURE_PROXY_SSL_HEADER", default="")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.strip().upper().replace("-", "_"), "https") if _proxy_ssl_header.strip() else None
)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Logs: LOG_FORMAT=plain (default) or json (one JSON object per line); every line
# of a request carries its id and endpoint (core/logging.py). ACCESS_LOG: one line
# per request (status, duration, cache decision); on by default with json.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain").lower()
ACCESS_LOG = env.bool("ACCESS_LOG", default=LOG_FORMAT == "json")
from core.logging import logging_config  # noqa: E402

LOGGING = logging_config(LOG_FORMAT, env.str("LOG_LEVEL", default="INFO"))
if LOG_FORMAT == "json":
    import logging as _logging

    _logging.captureWarnings(True)  # Python warnings as JSON lines too (logger py.warnings)

# Readiness (core/health.py): a replica more than this far behind makes /readyz fail.
REPLICA_MAX_LAG_SECONDS = env.float("REPLICA_MAX_LAG_SECONDS", default=30.0)
