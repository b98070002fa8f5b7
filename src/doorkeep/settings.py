"""Django settings: project wiring only. Every value that differs per deployment
comes from an environment variable, read through the strict helpers in env.py.
See docs/operations.md for the list."""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from doorkeep.env import (
    email_settings,
    encryption_keys,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_networks,
    env_path,
    env_seconds,
    env_str,
    secret_key,
    vapid_keys,
)

BASE_DIR = Path(__file__).resolve().parent
ENVIRONMENT = env_choice("DOORKEEP_ENV", "development", ("development", "production"))
PRODUCTION = ENVIRONMENT == "production"
DATA_DIR = env_path("DOORKEEP_DATA_DIR", Path.cwd() / "var")

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = secret_key(DATA_DIR, production=PRODUCTION)
# Stored secrets that must stay readable (panel seeds and tag keys, webhook
# signing secrets) are encrypted with the first key; all of them decrypt.
DOORKEEP_ENCRYPTION_KEYS = encryption_keys(DATA_DIR, production=PRODUCTION)
ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]", "testserver"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set in production (comma-separated hosts)")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# The web server's port (`doorkeep serve --port` sets it too); the site's
# address and the gateway's port follow it unless they are set themselves.
PORT = env_int("PORT", 8000, minimum=1, maximum=65534)
SITE_URL = env_str("SITE_URL", f"http://127.0.0.1:{PORT}").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",  # allauth's sessions page
    "doorkeep.web",  # before allauth, so that our templates override its layout
    "allauth",
    "allauth.account",
    "allauth.mfa",  # TOTP, passkeys (WebAuthn) and recovery codes (docs/accounts-security.md)
    "allauth.usersessions",  # each person lists and ends their own sessions
    "ninja",
    "doorkeep.core",
    "doorkeep.accounts",
    "doorkeep.properties",
    "doorkeep.locks",
    "doorkeep.keys",
    "doorkeep.events",
    "doorkeep.licensing",
    "doorkeep.gateway",
    "doorkeep.guests",
    "doorkeep.notify",
    "doorkeep.residents",
    "doorkeep.badges",
    "doorkeep.installations",
    "doorkeep.collaborators",
    "doorkeep.chargers",
    "doorkeep.laundry",
    "doorkeep.billing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "doorkeep.core.security.ContentSecurityPolicy",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "doorkeep.accounts.middleware.UserSessions",  # allauth's user sessions, noted every 5 min
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "doorkeep.accounts.mfa.RequireTwoFactor",
    "doorkeep.api.middleware.JsonApiErrors",
]

ROOT_URLCONF = "doorkeep.urls"
WSGI_APPLICATION = "doorkeep.wsgi.application"

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
                "django.template.context_processors.i18n",
                "doorkeep.web.context.roles",
                "doorkeep.notify.context.unread_notifications",
            ],
        },
    },
]

# Database: a SQLite file in the data directory unless DATABASE_URL says otherwise.
_default_db = f"sqlite:///{DATA_DIR / 'doorkeep.sqlite3'}"
# A connection is reopened after DB_CONN_MAX_AGE seconds (default 60;
# "unlimited" keeps it). Reopening costs a request about 8 ms on PostgreSQL
# (4-5 ms to connect, slower first statements in a fresh server process),
# once a minute per thread. A thread's connection is closed after the thread
# ends, at the next request or connection (doorkeep/core/threads.py).
try:
    DATABASES = {
        "default": dj_database_url.parse(
            env_str("DATABASE_URL", _default_db),
            conn_max_age=env_seconds("DB_CONN_MAX_AGE", 60),
        )
    }
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL cannot be understood: {exc}") from exc
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool(
    "DB_PREPARED_STATEMENTS", True
):
    # Parameters bound by the server, and a statement a connection runs often
    # (its 5th time) prepared by psycopg: planning the hot hand-written
    # queries cost ~0.8 ms each, running them ~0.1 ms (bench/gateway_unlock.py).
    # Off (DB_PREPARED_STATEMENTS=false) behind a pooler in transaction mode
    # that cannot keep prepared statements.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("server_side_binding", True)
    DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 5)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = (
        None  # keep the connection; SQLite pragmas are per connection
    )
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
            "PRAGMA busy_timeout=20000; PRAGMA cache_size=-65536;"
        ),
    }
    # Tests use a file too (not :memory:), so that the gateway's worker threads
    # and concurrent-writer tests share it as they would in production.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    # ASVS V2.1.1: at least 12 characters.
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "web:home"  # the guest app for guests, else the locks dashboard
LOGOUT_REDIRECT_URL = "account_login"

# django-allauth: email is the login; addresses must be verified before signing in.
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_SIGNUP_FORM_CLASS = "doorkeep.accounts.forms.SignupForm"  # asks for a name too
ACCOUNT_ADAPTER = "doorkeep.accounts.adapter.AccountAdapter"  # emails from Doorkeep; limits (below)
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_GET = False
# Wrong passwords are counted by doorkeep.accounts.signin_limits for the web
# sign-in and the API alike (docs/decisions/0021-limits-per-account-and-address.md),
# through ACCOUNT_ADAPTER. allauth's own limits (sign-up, password reset, and
# "login_failed" for what allauth still checks itself, such as MFA codes) are
# kept in CACHES, shared by every worker.
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/5m/key"}
# A failed sign-in marks the fields invalid and puts the focus back on them.
ACCOUNT_FORMS = {"login": "doorkeep.accounts.signin.SignInForm"}
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Doorkeep] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if PRODUCTION else "http"
# Two-factor authentication (allauth.mfa): offered to everyone, required of
# platform operators, of staff (the admin site) and of the managers and
# collaborators of an organization whose owner asks for it (accounts/mfa.py).
MFA_SUPPORTED_TYPES = ["totp", "webauthn", "recovery_codes"]
MFA_TOTP_ISSUER = "Doorkeep"
MFA_PASSKEY_LOGIN_ENABLED = False  # a passkey is a second factor here, not a password
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = not PRODUCTION  # http://127.0.0.1 in development
# allauth's user sessions (/accounts/sessions/): every signed-in request notes
# its session, so a person sees and ends theirs, and ending a collaborator's
# access ends all of theirs (docs/decisions/0012-collaborators-scoped-to-a-site.md).
USERSESSIONS_TRACK_ACTIVITY = True

# Demo mode (`doorkeep serve --demo`, so `make run`, sets DOORKEEP_DEMO): the
# sign-in page lists the demo logins, and emails are kept for the demo's
# mailbox page (/demo/mail/). Never in production: it shows passwords and mail.
DOORKEEP_DEMO = env_bool("DOORKEEP_DEMO", False)
if PRODUCTION and DOORKEEP_DEMO:
    raise ImproperlyConfigured("DOORKEEP_DEMO (serve --demo) cannot be used in production")
# The demo's operator login works with a password alone (docs/accounts-security.md).
DOORKEEP_TWO_FACTOR_FOR_OPERATORS = env_bool("DOORKEEP_TWO_FACTOR_FOR_OPERATORS", not DOORKEEP_DEMO)

# Email: printed to the console by default (and kept in DATA_DIR/mail in demo
# mode, docs/operations.md); EMAIL_URL for a real server.
_email_url = env_str("EMAIL_URL", "") or ("mailbox:" if DOORKEEP_DEMO else "console:")
for _name, _value in email_settings(_email_url).items():
    globals()[_name] = _value
DEFAULT_FROM_EMAIL = env_str(
    "DEFAULT_FROM_EMAIL", str(globals().get("DEFAULT_FROM_EMAIL") or "Doorkeep <noreply@localhost>")
)
SERVER_EMAIL = DEFAULT_FROM_EMAIL

LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", _("English")),
    ("fr", _("French")),
    ("nl", _("Dutch")),
    ("it", _("Italian")),
    ("de", _("German")),
]
# locale_allauth: formal German for allauth's messages, whose own German is informal.
LOCALE_PATHS = [BASE_DIR / "locale", BASE_DIR / "locale_allauth"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
# HTTPS only, in production: plain HTTP is redirected (health checks and
# metrics excepted, for load balancers and Prometheus inside the network),
# and browsers are told to use HTTPS for a year (HSTS). Each can be turned
# off, or HSTS shortened while trying it out (docs/operations.md).
SECURE_SSL_REDIRECT = env_bool("DOORKEEP_HTTPS_REDIRECT", PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("DOORKEEP_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DOORKEEP_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("DOORKEEP_HSTS_PRELOAD", PRODUCTION)
# Content-Security-Policy (core/security.py): where browsers report what it blocked.
DOORKEEP_CSP_REPORT_URI = env_str("DOORKEEP_CSP_REPORT_URI", "")
X_FRAME_OPTIONS = "DENY"
if env_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Proxies whose X-Forwarded-For is believed (addresses or CIDR networks); the
# client's address is the right-most entry that is not one of them
# (doorkeep/core/clientip.py). Empty: the peer's address is the client's.
DOORKEEP_TRUSTED_PROXIES = env_networks("DOORKEEP_TRUSTED_PROXIES", [])

NINJA_PAGINATION_MAX_LIMIT = 500

# The device gateway: where it listens, and how web workers reach it.
GATEWAY_HOST = env_str("GATEWAY_HOST", "127.0.0.1")
GATEWAY_PORT = env_int("GATEWAY_PORT", PORT + 1, minimum=0, maximum=65535)
GATEWAY_PUBLIC_URL = env_str(
    "GATEWAY_URL", ""
)  # what devices and web workers dial, if not host:port
DOORKEEP_UNLOCK_TIMEOUT = env_int("DOORKEEP_UNLOCK_TIMEOUT", 5, minimum=1)  # seconds
# POST /api/v1/entries/{id}/unlock with a bearer token answered in front of
# Django's request stack (doorkeep/api/fast.py); false: Django answers it.
DOORKEEP_FAST_UNLOCK = env_bool("DOORKEEP_FAST_UNLOCK", True)
# Webhooks and Web Push may reach private, loopback and reserved addresses
# (development, local receivers); production refuses them (doorkeep/notify/outbound.py).
DOORKEEP_OUTBOUND_PRIVATE_ADDRESSES = env_bool(
    "DOORKEEP_OUTBOUND_PRIVATE_ADDRESSES", not PRODUCTION
)
# Each gateway renews a lease in the database every quarter of this many
# seconds; the locks, stations and machines of a gateway whose lease ran out
# are recorded offline by the gateways still running (gateway/leases.py).
DOORKEEP_GATEWAY_LEASE_SECONDS = env_int("DOORKEEP_GATEWAY_LEASE_SECONDS", 8, minimum=2)
# Connections from one address that have not said hello yet (a lock's first
# message); more are refused with HTTP 503 until some have (gateway/server.py).
DOORKEEP_GATEWAY_WAITING_PER_ADDRESS = env_int(
    "DOORKEEP_GATEWAY_WAITING_PER_ADDRESS", 100, minimum=1
)
DOORKEEP_GATEWAY_ROUTING = env_choice("DOORKEEP_GATEWAY_ROUTING", "direct", ("direct", "redis"))
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
DOORKEEP_GATEWAY_REDIS_PREFIX = env_str("DOORKEEP_GATEWAY_REDIS_PREFIX", "doorkeep")
# GET /metrics (web workers and gateways) needs "Authorization: Bearer <token>";
# without a token, metrics are off (404). DOORKEEP_METRICS_TOKEN_FILE reads it from a file.
DOORKEEP_METRICS_TOKEN = env_str("DOORKEEP_METRICS_TOKEN", "")
# Django's cache holds allauth's rate limits, so it must be shared by every
# web worker and machine: a table in the database (made by `migrate`), or
# Redis at REDIS_URL with DOORKEEP_CACHE=redis.
if env_choice("DOORKEEP_CACHE", "database", ("database", "redis")) == "redis":
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"{DOORKEEP_GATEWAY_REDIS_PREFIX}:cache",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "doorkeep_cache",
        }
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"},
        "json": {"()": "doorkeep.core.logs.JsonFormatter"},
    },
    "filters": {"request_id": {"()": "doorkeep.core.logs.RequestIdFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            # LOG_FORMAT=json: one JSON object a line, for a log collector.
            "formatter": env_choice("LOG_FORMAT", "plain", ("plain", "json")),
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # At DEBUG websockets logs every handshake header, a station's HTTP
        # Basic password (base64) included: never below INFO.
        "websockets": {"level": "INFO"},
        # The OCPP frames (badge UIDs, whole local lists): WARNING unless
        # asked for with LOG_LEVEL_OCPP_FRAMES=DEBUG (or INFO).
        "doorkeep.gateway.ocpp.frames": {
            "level": env_str("LOG_LEVEL_OCPP_FRAMES", "WARNING").upper()
        },
        # The ocpp library's own logger (the charger simulator's frames).
        "ocpp": {"level": env_str("LOG_LEVEL_OCPP_FRAMES", "WARNING").upper()},
        # fontTools (fpdf2 embedding a font) logs thousands of lines per PDF at INFO.
        "fontTools": {"level": "WARNING"},
    },
}

if env_str("DOORKEEP_TOKEN_ATTEMPTS_PER_HOUR", ""):
    raise ImproperlyConfigured(
        "DOORKEEP_TOKEN_ATTEMPTS_PER_HOUR is no longer read: wrong passwords are limited by "
        "DOORKEEP_LOGIN_FAILURES_PER_ACCOUNT_ADDRESS, DOORKEEP_LOGIN_FAILURES_PER_ACCOUNT and "
        "DOORKEEP_LOGIN_FAILURES_PER_ADDRESS (docs/operations.md)"
    )

# Doorkeep's own settings.
DOORKEEP = {
    "MAX_USERS_PER_LOCK": env_int("DOORKEEP_MAX_USERS_PER_LOCK", 2500, minimum=1),
    "CLAIM_ATTEMPTS_PER_HOUR": env_int("DOORKEEP_CLAIM_ATTEMPTS_PER_HOUR", 5, minimum=1),
    # Wrong passwords per hour, web sign-in and API tokens together
    # (docs/decisions/0021-limits-per-account-and-address.md): for one account
    # from one address, for one account from everywhere, from one address.
    "LOGIN_FAILURES_PER_ACCOUNT_ADDRESS": env_int(
        "DOORKEEP_LOGIN_FAILURES_PER_ACCOUNT_ADDRESS", 10, minimum=1
    ),
    "LOGIN_FAILURES_PER_ACCOUNT": env_int("DOORKEEP_LOGIN_FAILURES_PER_ACCOUNT", 100, minimum=1),
    "LOGIN_FAILURES_PER_ADDRESS": env_int("DOORKEEP_LOGIN_FAILURES_PER_ADDRESS", 50, minimum=1),
    # Licensing (docs/licensing.md): the free period and the keys that come
    # with a lock's first registration; wrong prepaid codes allowed per hour.
    "FREE_MONTHS": env_int("DOORKEEP_FREE_MONTHS", 3, minimum=0),
    "INCLUDED_KEYS": env_int("DOORKEEP_INCLUDED_KEYS", 25, minimum=0),
    "CODE_ATTEMPTS_PER_HOUR": env_int("DOORKEEP_CODE_ATTEMPTS_PER_HOUR", 10, minimum=1),
    "CODE_ATTEMPTS_PER_ADDRESS_PER_HOUR": env_int(
        "DOORKEEP_CODE_ATTEMPTS_PER_ADDRESS_PER_HOUR", 30, minimum=1
    ),
    # The event log keeps events this many days (0: for ever), docs/operations.md.
    "EVENT_RETENTION_DAYS": env_int("DOORKEEP_EVENT_RETENTION_DAYS", 730, minimum=0),
    # Guests (docs/residents.md): how long an emailed invitation link works,
    # the panels' code step, and wrong panel codes allowed per guest per hour.
    "INVITATION_LINK_DAYS": env_int("DOORKEEP_INVITATION_LINK_DAYS", 7, minimum=1),
    "PANEL_CODE_SECONDS": env_int("DOORKEEP_PANEL_CODE_SECONDS", 30, minimum=10),
    "PANEL_ATTEMPTS_PER_HOUR": env_int("DOORKEEP_PANEL_ATTEMPTS_PER_HOUR", 10, minimum=1),
    # An NTAG 424 DNA panel's tap verifies presence within this many seconds.
    "PANEL_TAP_SECONDS": env_int("DOORKEEP_PANEL_TAP_SECONDS", 120, minimum=10),
}

# Notifications (docs/notifications.md): Web Push keys, and whether a commit that
# wrote outbox rows starts a delivery right away in a background thread
# (`doorkeep serve` also delivers every few seconds; `doorkeep outbox` on demand).
_vapid = vapid_keys(DATA_DIR, production=PRODUCTION)
DOORKEEP_VAPID_PRIVATE_KEY = _vapid[0] if _vapid else ""
DOORKEEP_VAPID_PUBLIC_KEY = _vapid[1] if _vapid else ""
_sender = DEFAULT_FROM_EMAIL.split("<")[-1].rstrip(">").strip()
DOORKEEP_VAPID_SUBJECT = env_str("DOORKEEP_VAPID_SUBJECT", f"mailto:{_sender}")
DOORKEEP_OUTBOX_KICK = env_bool("DOORKEEP_OUTBOX_KICK", True)
DOORKEEP_WEBHOOK_TIMEOUT = env_int("DOORKEEP_WEBHOOK_TIMEOUT", 5, minimum=1)  # seconds
