"""VideoStudio settings: one file, read from the environment.

Every variable is listed with a comment in `.env.example`. Zero configuration works: SQLite and
media under `var/`, Redis on localhost, and the ImageRouter simulator when no API key is set.
"""

import ipaddress
import os
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    """The variable's value; unset and empty alike mean the default (`.env` lines such as
    `DJANGO_SECURE_COOKIES=` keep the default)."""
    return os.environ.get(name, "").strip() or default


def env_bool(name: str, default: bool) -> bool:
    raw = env_str(name, "true" if default else "false").lower()
    if raw not in ("true", "false"):
        raise ImproperlyConfigured(f"{name} must be 'true' or 'false', not {raw!r}")
    return raw == "true"


def env_int(name: str, default: int) -> int:
    raw = env_str(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


# --- Core -------------------------------------------------------------------------------------

DEBUG = env_bool("DJANGO_DEBUG", False)
DEVELOPMENT_SECRET_KEY = "development-only-secret-key-never-use-in-production"  # noqa: S105
SECRET_KEY = env_str("DJANGO_SECRET_KEY") or DEVELOPMENT_SECRET_KEY
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")

# "Production" is any deployment that answers for a real host name. The development key and
# DEBUG are only acceptable on loopback, so refuse to start rather than serve with them.
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "[::1]", "testserver"}
PRODUCTION = bool(set(ALLOWED_HOSTS) - _LOOPBACK_HOSTS)
if PRODUCTION:
    if SECRET_KEY == DEVELOPMENT_SECRET_KEY:
        raise ImproperlyConfigured(
            "Set DJANGO_SECRET_KEY: the development key is for loopback only."
        )
    if DEBUG:
        raise ImproperlyConfigured("DJANGO_DEBUG must be false when serving a real host name.")

# --- HTTPS and security headers ------------------------------------------------------------------
# On by default in production (a real host name), off on loopback, where there is no TLS.
# `manage.py check --deploy --fail-level WARNING` passes with the production defaults.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", PRODUCTION)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", PRODUCTION)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", PRODUCTION)
# Behind a proxy that ends TLS, trust its X-Forwarded-Proto, or SSL redirect would loop forever.
# Only set this when the proxy overwrites the header: a client could otherwise claim https.
if env_bool("DJANGO_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# The healthchecks and Prometheus speak plain HTTP to the container, on its private network; a
# redirect to https would read as "down".
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^healthz/full$", r"^metrics$"]
# Proxies in front of the studio that append to X-Forwarded-For. 0: the client is REMOTE_ADDR.
# Login throttling counts attempts per address, so behind a proxy this must be right.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# In the database alone: a signed-in page then works while Redis is away, and a session that
# ended (a log-out, a password change) while Redis was away cannot come back from a stale cached
# copy once it returns. A session read is one primary-key query; the 2-s job poll's fast path
# reads the session's row in its own one query either way (jobs/polling.py).
SESSION_ENGINE = "django.contrib.sessions.backends.db"
# Pages may load only the studio's own scripts, styles and media: no inline script, no eval, no
# third-party origin. htmx is served from our static files; blob: lets the form preview a
# chosen image before it is uploaded.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "media-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "axes",
    "csp",
    "jobs",
]

MIDDLEWARE = [
    # First, so every response passes it last: adds the security headers to the answers that
    # skip csp and clickjacking (the 413, the poll's 204, a 500 from a middleware, a bad Host).
    "videostudio.headers.SecurityHeadersMiddleware",
    # Any error under /v1/ not already in the provider's JSON shape is put into it (jobs/api/).
    "jobs.api.middleware.ApiErrorShapeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # GET /healthz (and /healthz/full) for compose and load balancers, and /metrics for
    # Prometheus, answered before the Host is validated and before sessions and CSRF
    # (videostudio/health.py says why that is safe).
    "videostudio.health.HealthCheckMiddleware",
    # Names the job a request is about (its job_id URL argument) on every line it logs.
    "jobs.logcontext.JobContextMiddleware",
    # A NUL in the URL or a cookie is a 400 before anything puts it into a query (jobs/middleware.py).
    "jobs.middleware.NulCharacterMiddleware",
    # The 2-s job status poll, answered 204 while unchanged before the rest of the stack runs:
    # one query and one session read (jobs/polling.py; bench/polling.py measures it).
    "jobs.polling.UnchangedPollMiddleware",
    # Before anything reads the body: refuses an oversized request with a page, not a crash.
    "jobs.middleware.RequestBodyLimitMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Tells the audit trail who makes a change Django writes itself (an account's staff flag in
    # the admin) and from which address (jobs/services/audit.py).
    "jobs.services.audit.AuditRequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes requires: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "videostudio.urls"
WSGI_APPLICATION = "videostudio.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "jobs.context_processors.studio",
            ],
        },
    },
]

# SQLite is the zero-configuration default; DATABASE_URL switches to PostgreSQL.
DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    (BASE_DIR / "var").mkdir(exist_ok=True)
    DATABASE_URL = f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60)
    )
}
if DATABASES["default"]["ENGINE"].endswith("postgresql") and env_int("DATABASE_POOL_SIZE", 10):
    # Each process keeps at most DATABASE_POOL_SIZE connections, and a thread waits for one (up
    # to 120 s) instead of opening its own. Without it, 200 generations answering at once open
    # 200 connections and PostgreSQL (max_connections 100) refuses the rest after the paid call
    # (BENCHMARKS.md, "Generations in flight"). Django requires CONN_MAX_AGE 0 with a pool.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Added to the URL's own options (?sslmode=require for a managed database), not instead.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env_int("DATABASE_POOL_SIZE", 10),
        "timeout": 120,
    }
if DATABASES["default"]["ENGINE"].endswith("postgresql") and env_bool(
    "DATABASE_PREPARED_STATEMENTS", True
):
    # Django turns psycopg's prepared statements off (prepare_threshold None). Its own cursors
    # bind on the client and never prepare anyway, so a threshold that is never reached lets
    # psycopg prepare exactly the statements that ask: the 2-s status poll's one query
    # (jobs.polling.job_poll_state), which then costs PostgreSQL half the CPU. Turn it off behind a
    # transaction-mode PgBouncer that does not track prepared statements (before 1.21).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", sys.maxsize)
if DATABASES["default"]["ENGINE"].endswith("postgresql") and not env_bool("DATABASE_JIT", False):
    # PostgreSQL compiles a query to machine code (JIT) once its estimated cost passes
    # jit_above_cost, 100,000 by default, and a count over a team's 100,000 jobs passes it: the
    # galleries spent 0.4 to 2.3 s compiling for 7 to 25 ms of work (bench/gallery.py). The
    # studio's queries are short, and none gains from it. Added to the URL's own options, not
    # instead. Behind a pooler that refuses the `options` startup parameter, set DATABASE_JIT
    # true and turn jit off on the server.
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options["options"] = f"{options.get('options', '')} -c jit=off".strip()
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Take the write lock when a transaction begins, and wait for it, instead of failing with
    # "database is locked" when a reading transaction tries to write while a worker is writing.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so worker subprocesses in the fault tests share the test database;
    # one per test process, so two test runs in one checkout never share it.
    DATABASES["default"]["TEST"] = {
        "NAME": str(BASE_DIR / "var" / f"test-db-{os.getpid()}.sqlite3")
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes comes first: it refuses a locked-out username and address before any password check.
# Then the password policy: with PASSWORD_LOGIN=false it refuses every password but the
# break-glass account's before ModelBackend checks one. Single sign-on comes last; it answers
# only the callback's authorization code, and its sessions are kept by ModelBackend, as a
# password log-in's are (jobs/views/identity.py says why).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "jobs.security.PasswordLoginPolicyBackend",
    "django.contrib.auth.backends.ModelBackend",
    "jobs.identity.IdentityProviderBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "jobs:create"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files and media --------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT") or BASE_DIR / "var" / "static")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request without it
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve straight from the app and project folders, so a first run needs no collectstatic.
WHITENOISE_USE_FINDERS = True

# Videos, uploads and posters are private: they are never given a public URL. Only the views
# that check ownership (or a share link) serve them, through jobs.serving.file_response.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or BASE_DIR / "var" / "media")

# --- Video storage -------------------------------------------------------------------------------
# local: files under MEDIA_ROOT, for one host (or hosts sharing that folder). s3: an S3-compatible
# bucket (django-storages), so workers on other hosts store videos where the web can serve them.
STORAGE_BACKEND = env_str("STORAGE_BACKEND", "local").lower()
S3_BUCKET = env_str("S3_BUCKET")
# Empty: Amazon S3 in S3_REGION. Otherwise the server's URL (MinIO, Ceph, R2...), which people's
# browsers must reach too: videos are fetched from it by signed URL.
S3_ENDPOINT_URL = env_str("S3_ENDPOINT_URL").rstrip("/")
S3_REGION = env_str("S3_REGION", "us-east-1")
# Empty: boto3's own chain (AWS_ACCESS_KEY_ID and friends, ~/.aws, an instance role).
S3_ACCESS_KEY_ID = env_str("S3_ACCESS_KEY_ID")
S3_SECRET_ACCESS_KEY = env_str("S3_SECRET_ACCESS_KEY")
# Seconds a signed URL works after the ownership check made it. Browsers send later Range
# requests (seeking) to the URL they were redirected to, so it must outlast a viewing; a copied
# link dies with it.
S3_URL_EXPIRY = env_int("S3_URL_EXPIRY", 300)


def s3_storage(*, bucket, endpoint_url, region, access_key, secret_key, url_expiry) -> dict:
    """The STORAGES entry for a private bucket: no ACL of our own (the bucket's, which must not
    be public) and every URL signed, with a short life."""
    options = {
        "bucket_name": bucket,
        "endpoint_url": endpoint_url or f"https://s3.{region}.amazonaws.com",
        "region_name": region,
        "addressing_style": _s3_addressing(bucket, endpoint_url),
        "signature_version": "s3v4",  # botocore would sign a custom endpoint's URLs with SigV2
        "default_acl": None,
        "querystring_auth": True,
        "querystring_expire": url_expiry,
        # A second store of one job (a duplicate task) gets a name of its own, as on local disk:
        # overwriting would let its clean-up delete the first store's video.
        "file_overwrite": False,
        # Reading a video (posters, the zip download) copies it to a temporary file, spilled to
        # disk past 1 MiB (the default keeps it all in memory): memory must not grow with it.
        "max_memory_size": 1024 * 1024,
    }
    if access_key:
        options.update(access_key=access_key, secret_key=secret_key)
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}


def _s3_addressing(bucket: str, endpoint_url: str) -> str:
    """Path-style (host/bucket/key) on a configured endpoint, which every S3-compatible server
    accepts; on Amazon S3 the bucket's own host name, unless a dot in the name would break TLS."""
    return "path" if endpoint_url or "." in bucket else "virtual"


def s3_url_origin(*, bucket: str, endpoint_url: str, region: str) -> str:
    """Where the signed URLs point: the pages' Content-Security-Policy must allow it."""
    endpoint = urlsplit(endpoint_url or f"https://s3.{region}.amazonaws.com")
    if _s3_addressing(bucket, endpoint_url) == "virtual":
        return f"{endpoint.scheme}://{bucket}.{endpoint.netloc}"
    return f"{endpoint.scheme}://{endpoint.netloc}"


if STORAGE_BACKEND not in ("local", "s3"):
    raise ImproperlyConfigured(f"STORAGE_BACKEND must be 'local' or 's3', not {STORAGE_BACKEND!r}")
if STORAGE_BACKEND == "s3":
    if not S3_BUCKET:
        raise ImproperlyConfigured(
            "Set S3_BUCKET: STORAGE_BACKEND=s3 stores videos in that bucket."
        )
    if bool(S3_ACCESS_KEY_ID) != bool(S3_SECRET_ACCESS_KEY):
        raise ImproperlyConfigured(
            "Set both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or neither."
        )
    if not 1 <= S3_URL_EXPIRY <= 7 * 24 * 3600:  # SigV4's limit is a week
        raise ImproperlyConfigured("S3_URL_EXPIRY must be from 1 to 604800 seconds.")
    if env_str("MEDIA_X_ACCEL_PREFIX"):
        raise ImproperlyConfigured(
            "MEDIA_X_ACCEL_PREFIX hands nginx files under MEDIA_ROOT; with STORAGE_BACKEND=s3 "
            "videos are served by signed S3 URLs instead. Unset one of them."
        )
    if S3_ENDPOINT_URL and urlsplit(S3_ENDPOINT_URL).scheme not in ("http", "https"):
        raise ImproperlyConfigured(
            f"S3_ENDPOINT_URL must be an http(s) URL, not {S3_ENDPOINT_URL!r}"
        )
    _default_storage = s3_storage(
        bucket=S3_BUCKET,
        endpoint_url=S3_ENDPOINT_URL,
        region=S3_REGION,
        access_key=S3_ACCESS_KEY_ID,
        secret_key=S3_SECRET_ACCESS_KEY,
        url_expiry=S3_URL_EXPIRY,
    )
    # The views redirect to signed URLs in the bucket: let the pages load media from there.
    _origin = s3_url_origin(bucket=S3_BUCKET, endpoint_url=S3_ENDPOINT_URL, region=S3_REGION)
    for _directive in ("img-src", "media-src"):
        CONTENT_SECURITY_POLICY["DIRECTIVES"][_directive].append(_origin)
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- ImageRouter ---------------------------------------------------------------------------------

# With no key the studio talks to the bundled simulator (`python -m simulator`), never the internet.
IMAGEROUTER_API_KEY = env_str("IMAGEROUTER_API_KEY")
SIMULATOR_MODE = not IMAGEROUTER_API_KEY
# Where the simulator listens when there is no key (`make run` starts it there).
IMAGEROUTER_SIMULATOR_URL = env_str("IMAGEROUTER_SIMULATOR_URL", "http://127.0.0.1:8765")
IMAGEROUTER_BASE_URL = (
    env_str("IMAGEROUTER_BASE_URL")
    or (IMAGEROUTER_SIMULATOR_URL if SIMULATOR_MODE else "https://api.imagerouter.io")
).rstrip("/")
if SIMULATOR_MODE:
    IMAGEROUTER_API_KEY = "simulator-key"  # the simulator takes any non-empty key
# Seconds to open the TCP connection. A failure here means the provider did nothing.
IMAGEROUTER_CONNECT_TIMEOUT = env_int("IMAGEROUTER_CONNECT_TIMEOUT", 10)
# Seconds one socket read may wait. The provider waits 5-20 min on its own upstream and sends a
# keep-alive space every 3 s, so this only fires on a connection that has gone silent.
IMAGEROUTER_READ_TIMEOUT = env_int("IMAGEROUTER_READ_TIMEOUT", 900)
# Seconds the whole call may take, keep-alive spaces included. Past it the outcome is unknown.
IMAGEROUTER_DEADLINE = env_int("IMAGEROUTER_DEADLINE", 1200)
# Provider-side caps (README, "Provider-side caps"): with a management key the studio mints one
# provider key per team and per person, capped by their budget, and calls with it. Empty: every
# call uses IMAGEROUTER_API_KEY, as before. IMAGEROUTER_API_KEY still reads /v1/credits.
IMAGEROUTER_MANAGEMENT_KEY = env_str("IMAGEROUTER_MANAGEMENT_KEY")
# Fernet keys (comma-separated; the first encrypts, all decrypt, so a key can be rotated) that
# encrypt the minted keys' secrets in the database. Required with a management key.
IMAGEROUTER_KEY_ENCRYPTION_KEYS = env_list("IMAGEROUTER_KEY_ENCRYPTION_KEYS", "")
if IMAGEROUTER_MANAGEMENT_KEY:
    if not IMAGEROUTER_KEY_ENCRYPTION_KEYS:
        raise ImproperlyConfigured(
            "IMAGEROUTER_MANAGEMENT_KEY is set: set IMAGEROUTER_KEY_ENCRYPTION_KEYS too (make one "
            'with: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())").'
        )
    from cryptography.fernet import Fernet

    for _position, _key in enumerate(IMAGEROUTER_KEY_ENCRYPTION_KEYS, start=1):
        try:
            Fernet(_key)
        except ValueError:
            raise ImproperlyConfigured(
                f"IMAGEROUTER_KEY_ENCRYPTION_KEYS: key {_position} is not a Fernet key (32 "
                "url-safe base64-encoded bytes)."
            ) from None

# --- Celery ----------------------------------------------------------------------------------------

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
# The cache holds only short-lived counters (failed logins, submits and API requests per
# minute), each with a timeout, so it can share the broker's Redis. While Redis is away they are
# counted in each process's memory (videostudio/cache.py): the limits still hold, per process.
CACHES = {
    "default": {
        "BACKEND": "videostudio.cache.FallbackRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "videostudio",
        # A Redis that does not answer costs a request at most this long, once per
        # FallbackRedisCache.RETRY_SECONDS.
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}
# The database is the source of truth; nothing reads task results.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
# Messages carry ids only, and JSON cannot smuggle pickled objects.
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
# Ack when the task starts: a redelivered message must never repeat a paid call. The claim in
# services.job_run guards too, and the sweeper rescues jobs whose message was lost.
CELERY_TASK_ACKS_LATE = False
CELERY_TASK_REJECT_ON_WORKER_LOST = False
# A generation waits minutes: a worker must not hoard messages that other workers could run.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Paid generations and video downloads have queues, and workers, of their own: a slow download
# never holds up a paid call, and a burst of calls never starves the downloads. Housekeeping
# (sweep, catalog sync, digests, webhook deliveries) stays on the default queue, served by the
# store worker.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ROUTES = {
    "jobs.tasks.run_job": {"queue": "generate"},
    "jobs.tasks.store_job": {"queue": "store"},
    # A queue and a worker of their own, one at a time: a poster is never worth delaying a
    # video for, and ffmpeg's decodes must not take the cores that the stores need.
    "jobs.tasks.make_poster": {"queue": "poster"},
    # Email too: each message is an SMTP conversation, and 3,000 "video ready" emails sent by the
    # store worker's process took the CPU its stores needed (BENCHMARKS.md, 2026-12-06 night).
    "jobs.tasks.send_email": {"queue": "mail"},
}
# Generations are I/O-bound waits, so one worker process runs many of them on threads
# (BENCHMARKS.md compares the pools). The store worker's concurrency is set on its command line.
CELERY_WORKER_POOL = "threads"
# 3,000: one provider key starts up to 20 calls a second and each takes minutes, so a burst
# fills thousands of slots. The threads are cheap: a 2-core host ran 3,000 jobs on 3,000 in
# 594-724 MiB in all (bench/inflight.py), and they start only as calls need them.
CELERY_WORKER_CONCURRENCY = env_int("CELERY_GENERATE_CONCURRENCY", 3000)
# 32: 3,000 answers landing in a minute come at 50 a second, and a store takes 0.1-0.2 s of wall
# time on busy cores (10 ms of CPU), so 8 threads fell behind by 2-4 s; 32 kept up (0.09 s p95).
CELERY_STORE_CONCURRENCY = env_int("CELERY_STORE_CONCURRENCY", 32)
CELERY_POSTER_CONCURRENCY = env_int("CELERY_POSTER_CONCURRENCY", 1)
# 8: a message is a connection and a conversation of its own with the SMTP server (milliseconds
# nearby, a second or more across the internet with TLS), and mostly waits on it.
CELERY_MAIL_CONCURRENCY = env_int("CELERY_MAIL_CONCURRENCY", 8)
# The client enforces IMAGEROUTER_DEADLINE itself; these limits only catch a worker that hangs
# outside the HTTP call. Soft limit first (the task fails the job cleanly), then the hard kill.
CELERY_TASK_SOFT_TIME_LIMIT = IMAGEROUTER_DEADLINE + 60
CELERY_TASK_TIME_LIMIT = IMAGEROUTER_DEADLINE + 120
# Thread pools ignore Celery's time limits, so the sweeper enforces this one for every pool: a job
# RUNNING this long has lost its worker (the client gives up at IMAGEROUTER_DEADLINE).
JOB_RUNNING_DEADLINE = env_int("JOB_RUNNING_DEADLINE", CELERY_TASK_TIME_LIMIT + 60)
# A QUEUED job whose message is this old is sent again (Redis may have lost it; the claim makes a
# duplicate harmless).
JOB_REQUEUE_AFTER = env_int("JOB_REQUEUE_AFTER", 300)
# A STORING job untouched this long has lost its store task; the store is retried (never the API).
JOB_STORING_DEADLINE = env_int("JOB_STORING_DEADLINE", 900)
# Seconds before the first retry of a failed download; each retry doubles it.
STORE_RETRY_DELAY = env_int("STORE_RETRY_DELAY", 2)
# Redis re-delivers an unacked message after this many seconds (ETA messages wait unacked in the
# worker). It must outlast everything above, or a slow job would be handed to a second worker.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": JOB_RUNNING_DEADLINE + 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    # The provider's models and prices change rarely; a failed sync keeps the last catalog.
    "sync-model-catalog": {"task": "jobs.tasks.sync_catalog", "schedule": 6 * 3600},
    # Fails jobs whose worker died, re-sends lost messages, retries stalled stores.
    "sweep-jobs": {"task": "jobs.tasks.sweep", "schedule": 60},
    # Provider keys (with a management key): mints the next period's key before the current
    # one's period ends, and a new one when a budget changed. Nothing to do without one.
    "renew-provider-keys": {"task": "jobs.tasks.renew_provider_keys", "schedule": 60},
    # Staff's list of unknown-outcome jobs still to check, at 08:00 UTC (none: no email). The
    # outbox key names the day, so a beat that fires twice sends once.
    "unknown-outcome-summary": {
        "task": "jobs.tasks.send_unknown_summary",
        "schedule": crontab(hour=8, minute=0),
    },
    # Owners' videos that retention deletes within EXPIRY_WARNING_DAYS, at 08:00 UTC (none: no
    # email). The outbox key names the day, so a beat that fires twice sends once.
    "expiry-warnings": {
        "task": "jobs.tasks.send_expiry_warnings",
        "schedule": crontab(hour=8, minute=0),
    },
    # The weekly spend digest of the week just ended, Mondays at 08:00 UTC (opt-in); keyed by
    # ISO week, so a repeat sends nothing.
    "weekly-spend-digest": {
        "task": "jobs.tasks.send_weekly_digests",
        "schedule": crontab(hour=8, minute=0, day_of_week="mon"),
    },
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Studio --------------------------------------------------------------------------------------

# The monthly budget (USD) a new user starts with; empty means no limit until an admin sets one.
DEFAULT_MONTHLY_BUDGET = (
    Decimal(env_str("DEFAULT_MONTHLY_BUDGET")) if env_str("DEFAULT_MONTHLY_BUDGET") else None
)
# Uploaded input images larger than this are refused at the form.
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 10 * 1024 * 1024)
# Images with more pixels than this are refused before they are decoded (decompression bombs).
UPLOAD_MAX_PIXELS = env_int("UPLOAD_MAX_PIXELS", 40_000_000)
# A request body larger than this is refused with a 413 page before it is read. Above
# UPLOAD_MAX_BYTES, so an image a little too big gets the form's own message instead.
REQUEST_MAX_BYTES = env_int("REQUEST_MAX_BYTES", 2 * UPLOAD_MAX_BYTES + 1024 * 1024)
# Generations one person may start per minute (0: no limit), through the form or a retry.
JOB_SUBMITS_PER_MINUTE = env_int("JOB_SUBMITS_PER_MINUTE", 10)
# Jobs one person may have queued or running at once (0: no cap), checked atomically at submit.
JOB_ACTIVE_LIMIT = env_int("JOB_ACTIVE_LIMIT", 10)
# Teams: when true, every job must be charged to a team (the form offers no personal space).
TEAM_REQUIRED = env_bool("TEAM_REQUIRED", False)
# Retention: days a video, its poster and its input image are kept before the sweeper deletes
# them (the job, its prompt and its cost stay); empty keeps them for ever. Each team may have its
# own (Admin > Teams); a starred video is kept for ever.
RETENTION_DAYS = env_int("RETENTION_DAYS", 0) if env_str("RETENTION_DAYS") else None
if RETENTION_DAYS is not None and RETENTION_DAYS < 1:
    raise ImproperlyConfigured(
        "RETENTION_DAYS must be 1 or more days, or empty to keep videos for ever."
    )
# Owners see (in the galleries), and are emailed about, videos this many days before they expire.
EXPIRY_WARNING_DAYS = 7
# Failed log-ins allowed per username and address before a cool-off (django-axes, in the cache).
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15))
# Per username *and* address: a stranger cannot lock a colleague out, and one office behind a
# NAT does not lock itself out.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "jobs.security.client_ip"
AXES_VERBOSE = False  # no banner on every manage.py command; lockouts are still logged

# --- Single sign-on (OpenID Connect, mozilla-django-oidc; README "Single sign-on") -------------
# The provider's issuer URL; its endpoints and keys come from <issuer>/.well-known/openid-configuration.
# Empty: no single sign-on, no button, nothing changes.
OIDC_ISSUER = env_str("OIDC_ISSUER").rstrip("/")
OIDC_RP_CLIENT_ID = env_str("OIDC_CLIENT_ID")
OIDC_RP_CLIENT_SECRET = env_str("OIDC_CLIENT_SECRET")
# What the log-in page's button says, for example "Sign in with Okta".
OIDC_BUTTON_LABEL = env_str("OIDC_BUTTON_LABEL", "Sign in with single sign-on")
# The ID token claim that lists the person's groups (teams map to them in Admin > Teams).
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
OIDC_RP_SCOPES = env_str("OIDC_SCOPES", "openid email profile")
OIDC_RP_SIGN_ALGO = env_str("OIDC_SIGN_ALGORITHM", "RS256")
# Seconds to wait on the provider (discovery, token, keys) before saying it is unreachable.
OIDC_TIMEOUT = env_int("OIDC_TIMEOUT", 10)
OIDC_USE_PKCE = True
OIDC_USE_NONCE = True
OIDC_AUTHENTICATION_CALLBACK_URL = "oidc_callback"
if OIDC_ISSUER:
    if urlsplit(OIDC_ISSUER).scheme not in ("http", "https") or not urlsplit(OIDC_ISSUER).netloc:
        raise ImproperlyConfigured(f"OIDC_ISSUER must be an http(s) URL, not {OIDC_ISSUER!r}")
    if not (OIDC_RP_CLIENT_ID and OIDC_RP_CLIENT_SECRET):
        raise ImproperlyConfigured(
            "OIDC_ISSUER is set: set OIDC_CLIENT_ID and OIDC_CLIENT_SECRET too."
        )
# false: nobody logs in or signs up with a password (and no password reset), but the one staff
# account named by BREAK_GLASS_USERNAME, for when the identity provider is down.
PASSWORD_LOGIN = env_bool("PASSWORD_LOGIN", True)
BREAK_GLASS_USERNAME = env_str("BREAK_GLASS_USERNAME")
if not PASSWORD_LOGIN and not OIDC_ISSUER:
    raise ImproperlyConfigured("PASSWORD_LOGIN=false needs OIDC_ISSUER, or nobody could log in.")
if not PASSWORD_LOGIN and not BREAK_GLASS_USERNAME:
    raise ImproperlyConfigured(
        "PASSWORD_LOGIN=false needs BREAK_GLASS_USERNAME: a staff account that can still log in "
        "with its password while the identity provider is down."
    )

# When set (for example /protected/), videos and uploads are handed to nginx with
# X-Accel-Redirect under this internal location, after the ownership check, instead of being
# streamed by Django. Empty: Django streams them.
MEDIA_X_ACCEL_PREFIX = env_str("MEDIA_X_ACCEL_PREFIX")

# --- Gateway -------------------------------------------------------------------------------------
# Email (services/mail.py queues it, a worker sends it, jobs/mail.py talks to the server).
# With no EMAIL_HOST, messages are printed to the worker's output (and runstudio says so).
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
# STARTTLS on the submission port (587), or TLS from the first byte (465): one or neither.
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("Set EMAIL_USE_TLS or EMAIL_USE_SSL, not both.")
# Seconds for each step of the SMTP conversation.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env_str("EMAIL_FROM", "VideoStudio <videostudio@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Tries before a message is given up and shown to staff as failed (about a day of backoff).
EMAIL_MAX_ATTEMPTS = env_int("EMAIL_MAX_ATTEMPTS", 12)
# The studio's address as people reach it, for the links in emails sent from a worker.
STUDIO_URL = env_str("STUDIO_URL", "http://127.0.0.1:8000")

# Accounts by email (services/accounts.py). Sign-up asks for an address; with verification on it
# is required and the account cannot log in until the link sent to it is followed.
SIGNUP_EMAIL_VERIFICATION = env_bool("SIGNUP_EMAIL_VERIFICATION", False)
# How long a link in an email works: password reset, sign-up verification, address change.
EMAIL_LINK_MAX_AGE = env_int("EMAIL_LINK_HOURS", 24) * 3600
PASSWORD_RESET_TIMEOUT = EMAIL_LINK_MAX_AGE
# Links one address may be sent in an hour (resets, verification, address changes), whoever
# asks: the reset form cannot be used to flood someone's inbox.
ACCOUNT_EMAILS_PER_HOUR = env_int("ACCOUNT_EMAILS_PER_HOUR", 3)

# The ImageRouter-compatible API under /v1/ (jobs/api/), for scripts with personal API tokens.

# Requests one API token may make per minute, whatever the endpoint (0: no limit). Submits also
# count against JOB_SUBMITS_PER_MINUTE and JOB_ACTIVE_LIMIT, as on the form.
GATEWAY_REQUESTS_PER_MINUTE = env_int("GATEWAY_REQUESTS_PER_MINUTE", 120)
# A synchronous generation holds a web thread for minutes (gunicorn: 2 workers x 4 threads).
# Past this many at once in one process, it is refused with 429 and the caller told to use
# ?async=true, so the pages always keep threads to answer with. 0: asynchronous only.
GATEWAY_MAX_WAITS_PER_PROCESS = env_int("GATEWAY_MAX_WAITS_PER_PROCESS", 2)
# The longest a synchronous generation waits for its job before answering with the job's id
# to fetch later: past the provider's own deadline and a queue's wait.
GATEWAY_WAIT_SECONDS = env_int("GATEWAY_WAIT_SECONDS", IMAGEROUTER_DEADLINE + 300)
# Image URLs are fetched, and webhooks posted, by the studio, so by default only public
# addresses: never loopback, private networks or cloud metadata. true lets scripts name images
# and webhook receivers on your own network.
GATEWAY_IMAGE_URLS_PRIVATE = env_bool("GATEWAY_IMAGE_URLS_PRIVATE", False)

# --- Metrics (videostudio/metrics.py; README "Metrics") -------------------------------------------
# Who may scrape /metrics: with a token, only requests that send it as `Authorization: Bearer`;
# with networks (comma-separated, such as 10.0.0.0/8,fd00::/8), only clients in them; with both,
# both must hold. With neither, only loopback, and in production nobody.
METRICS_TOKEN = env_str("METRICS_TOKEN")
if METRICS_TOKEN and len(METRICS_TOKEN) < 32:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 32 characters (a random string).")
try:
    METRICS_ALLOWED_NETWORKS = tuple(
        ipaddress.ip_network(net, strict=False) for net in env_list("METRICS_ALLOWED_NETWORKS", "")
    )
except ValueError as exc:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {exc}") from None
# A worker host (manage.py runworker) serves its own processes' metrics on this port; 0: not.
# Only where its processes cannot write to the web's PROMETHEUS_MULTIPROC_DIR (another
# container or machine): docker compose sets it.
METRICS_WORKER_PORT = env_int("METRICS_WORKER_PORT", 0)
# prometheus_client reads this variable itself, in every process, before settings exist; it is
# read here so that .env.example documents it. Empty: each process counts alone, and /metrics
# shows only the events of the process that answers.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR")

# --- Logging -------------------------------------------------------------------------------------

# Every process logs to stdout: one JSON object a line in production, for a log shipper, and plain
# lines elsewhere, for people. A JSON line about a job carries its job_id (jobs/logcontext.py).
LOG_FORMAT = env_str("LOG_FORMAT", "json" if PRODUCTION else "plain")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'json' or 'plain', not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"job_id": {"()": "jobs.logcontext.JobIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "videostudio.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": LOG_FORMAT,
            "filters": ["job_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
# Error reports (the debug page, error e-mails) hide the password inside REDIS_URL, DATABASE_URL
# and the other URL settings too, not only settings named like KEY or PASSWORD.
DEFAULT_EXCEPTION_REPORTER_FILTER = "videostudio.logs.SecretUrlFilter"
