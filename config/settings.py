"""Settings come from the environment (and an optional .env file); see README, Configuration."""

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from .caches import cache_config

BASE_DIR = Path(__file__).resolve().parent.parent


class Env(environ.Env):
    """django-environ, saying which setting a value it cannot read belongs to."""

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        try:
            return super().get_value(var, cast=cast, default=default, parse_default=parse_default)
        except ValueError as error:
            raise ImproperlyConfigured(f"{var} cannot be read: {error}") from None


env = Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)


def required_secret(name: str, *, development: str) -> str:
    """`name` from the environment; with DEBUG off the shop refuses to start without it, since
    `development` (written in this repository) would let anyone sign sessions and sign-in links."""
    value = env.str(name, default="")
    if value:
        return value
    if not DEBUG:
        raise ImproperlyConfigured(
            f"{name} must be set when DEBUG is off (a long random value, the same on every host; "
            "see README, Security)."
        )
    return development


SECRET_KEY = required_secret(
    "SECRET_KEY", development="django-insecure-development-key-do-not-use-in-production"
)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
SITE_URL = env("SITE_URL", default="http://localhost:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[SITE_URL])

INSTALLED_APPS = [
    "accounts.apps.ShopAdminConfig",  # django.contrib.admin with the staff's login
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "accounts",
    "audit",
    "orders",
    "licenses",
    "notifications",
    "workers",
    "dashboards",
]

MIDDLEWARE = [
    "shop.proxies.ForwardedHeadersFromProxiesOnly",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "accounts.second_factor.StaffAreaMiddleware",
    "accounts.time_zones.StaffTimeZoneMiddleware",
    "config.bad_requests.RefuseNulBytes",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Content-Security-Policy (django-csp) on every response: scripts and styles only from the
# shop's own static files (templates carry no inline script, style element or style attribute),
# no framing. Buy Now posts to the shop, which redirects to Stripe Checkout or to the TEST MODE
# page at SITE_URL; browsers check a form's redirects against form-action too.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [
            SELF,
            urlsplit(SITE_URL)._replace(path="", query="", fragment="").geturl(),
            "https://checkout.stripe.com",
        ],
    }
}

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "orders.context_processors.payment_mode",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE makes every transaction take the write lock up front, so concurrent writers
    # queue behind each other instead of failing halfway with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        transaction_mode="IMMEDIATE", timeout=20, init_command="PRAGMA journal_mode=WAL;"
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
    # PostgreSQL binds the parameters (psycopg no longer quotes them into the SQL in Python) and
    # prepares the statements a connection runs again and again: a sixth less server CPU per
    # webhook event (docs/benchmarks.md). Behind PgBouncer in transaction mode (before 1.21,
    # or without max_prepared_statements) set DATABASE_PREPARE_THRESHOLD=off.
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["server_side_binding"] = env.bool("DATABASE_SERVER_SIDE_BINDING", default=True)
    _threshold = env.str("DATABASE_PREPARE_THRESHOLD", default="5").strip().lower()
    _options["prepare_threshold"] = None if _threshold in ("off", "none", "") else int(_threshold)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "admin:login"
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.error_reports.SecretsFilter"
DEFAULT_EXCEPTION_REPORTER = "config.error_reports.MaskingReporter"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="shop@localhost")
# A mail server that hangs must not hold the key-email worker for ever.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)

# Payments. Without STRIPE_SECRET_KEY the offline test gateway stands in for Stripe.
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="whsec_offline_test_gateway")
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")
STRIPE_API_VERSION = "2026-10-28.endive"
STRIPE_TIMEOUT = env.float("STRIPE_TIMEOUT", default=20)
STRIPE_WEBHOOK_TOLERANCE = 300
STRIPE_WEBHOOK_MAX_BYTES = 1024 * 1024
# How long the offline gateway waits before a delayed (bank debit) payment settles.
TEST_GATEWAY_DELAY = env.float("TEST_GATEWAY_DELAY", default=10)

# Licenses. Keys are looked up by HMAC(LICENSE_HASH_KEY, key): required when DEBUG is off, so that
# rotating SECRET_KEY never makes every key NOT_FOUND (with DEBUG on it falls back to SECRET_KEY).
LICENSE_HASH_KEY = required_secret("LICENSE_HASH_KEY", development="")
# The validate API's limits: requests per window, per client address and per key.
LICENSE_VALIDATE_RATE = env.int("LICENSE_VALIDATE_RATE", default=60)
LICENSE_VALIDATE_KEY_RATE = env.int("LICENSE_VALIDATE_KEY_RATE", default=20)
LICENSE_VALIDATE_WINDOW = env.int("LICENSE_VALIDATE_WINDOW", default=60)
# Devices a license's holder may deactivate in 30 days (staff resets do not count): someone who
# shares a key cannot hand its activations round and round.
LICENSE_DEACTIVATIONS_PER_30_DAYS = env.int("LICENSE_DEACTIVATIONS_PER_30_DAYS", default=5)
# How long a license certificate (the signed answer of validate and activate) may be trusted
# offline, in seconds; a signing key stays published this long after it was rotated away.
LICENSE_CERTIFICATE_TTL = env.int("LICENSE_CERTIFICATE_TTL", default=7 * 24 * 3600)
# Customers are reminded this many days before a license expires (by the key-email worker).
LICENSE_EXPIRY_REMINDER_DAYS = env.int("LICENSE_EXPIRY_REMINDER_DAYS", default=14)
# Behind a reverse proxy every request comes from the proxy: name the header it sets (e.g.
# X-Forwarded-For) and the limiter counts the address the proxy saw (the header's last entry).
CLIENT_IP_HEADER = env("CLIENT_IP_HEADER", default="")
# The proxies whose X-Forwarded-Proto and CLIENT_IP_HEADER are believed (addresses or networks,
# comma-separated, or "*"); gunicorn reads the same variable for its scheme. From anyone else those
# headers are dropped: a client could otherwise pass for https, or for another address.
FORWARDED_ALLOW_IPS = env.list("FORWARDED_ALLOW_IPS", default=["127.0.0.1"])
for _entry in FORWARDED_ALLOW_IPS:  # read as gunicorn reads it: networks without host bits
    try:
        if _entry != "*":
            ipaddress.ip_network(_entry)
    except ValueError:
        raise ImproperlyConfigured(
            f"FORWARDED_ALLOW_IPS: {_entry!r} is neither an address, a network nor '*'."
        ) from None
# The limiter's counts: shared by every process only in a shared cache (Redis in production).
CACHES = {"default": cache_config(env("CACHE_URL", default="locmemcache://"))}

# Customers' /account: sign-in links work once, for ACCOUNT_LINK_MAX_AGE seconds; links asked for
# are limited per email and per client address in each ACCOUNT_LINK_WINDOW (counted in CACHES).
ACCOUNT_LINK_MAX_AGE = env.int("ACCOUNT_LINK_MAX_AGE", default=15 * 60)
ACCOUNT_LINK_EMAIL_RATE = env.int("ACCOUNT_LINK_EMAIL_RATE", default=5)
ACCOUNT_LINK_CLIENT_RATE = env.int("ACCOUNT_LINK_CLIENT_RATE", default=20)
ACCOUNT_LINK_WINDOW = env.int("ACCOUNT_LINK_WINDOW", default=3600)
# Staff sign in with a password and a time-based code (TOTP, django-otp) from an authenticator app:
# /admin and /mgmt wait for the code, and walk a staff member without one through setting it up.
# Required by default except in the offline test mode dev.py runs (DEBUG on, no Stripe key).
STAFF_2FA_REQUIRED = env.bool("STAFF_2FA_REQUIRED", default=bool(STRIPE_SECRET_KEY) or not DEBUG)
# Setting up an authenticator first takes a code emailed to the staff member: at most this many
# such emails per account and hour.
STAFF_SETUP_EMAILS_PER_HOUR = env.int("STAFF_SETUP_EMAILS_PER_HOUR", default=5)
OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", default="License Shop")
OTP_ADMIN_HIDE_SENSITIVE_DATA = True  # the admin never shows a device's secret
# Staff's password sign-in (/admin/login/): failed sign-ins per account and per client address in
# each window; past either, even the right password waits for the window's end.
LOGIN_FAILURES_PER_ACCOUNT = env.int("LOGIN_FAILURES_PER_ACCOUNT", default=5)
LOGIN_FAILURES_PER_CLIENT = env.int("LOGIN_FAILURES_PER_CLIENT", default=20)
LOGIN_FAILURE_WINDOW = env.int("LOGIN_FAILURE_WINDOW", default=15 * 60)
# The checkout success page asks Stripe for the session on every visit: visits per client address
# in each window (a buyer comes once or twice; a loop or a scan is cut off).
# How long a buyer has to pay a Checkout Session (Stripe allows 30 to 1440 minutes); past it the
# session expires and the order is failed as an abandoned checkout (payable again).
CHECKOUT_EXPIRES_MINUTES = env.int("CHECKOUT_EXPIRES_MINUTES", default=60)
# Stripe issues an invoice for each paid Checkout Session (its hosted page and PDF are linked from
# the receipt instead of ours). Stripe charges for invoices: off by default.
STRIPE_INVOICES = env.bool("STRIPE_INVOICES", default=False)
# Checkout Sessions take promotion codes (made in the Stripe Dashboard) and Stripe Tax adds the
# buyer's tax: what was charged changes, the discount and tax are recorded from the session.
STRIPE_ALLOW_PROMOTION_CODES = env.bool("STRIPE_ALLOW_PROMOTION_CODES", default=False)
STRIPE_AUTOMATIC_TAX = env.bool("STRIPE_AUTOMATIC_TAX", default=False)
# Stripe advises refunding a payment its Radar early fraud warning calls actionable, before the
# dispute (and its fee) comes: on, the refund_fraud_warnings worker refunds it in full.
STRIPE_REFUND_ON_FRAUD_WARNING = env.bool("STRIPE_REFUND_ON_FRAUD_WARNING", default=False)
CHECKOUT_SUCCESS_RATE = env.int("CHECKOUT_SUCCESS_RATE", default=30)
CHECKOUT_SUCCESS_WINDOW = env.int("CHECKOUT_SUCCESS_WINDOW", default=60)
# "Resend my keys" per order in each window, so the button cannot be used to flood a mailbox.
ACCOUNT_RESEND_KEYS_RATE = env.int("ACCOUNT_RESEND_KEYS_RATE", default=3)
ACCOUNT_RESEND_KEYS_WINDOW = env.int("ACCOUNT_RESEND_KEYS_WINDOW", default=3600)

DISCORD_WEBHOOK_URL = env("DISCORD_WEBHOOK_URL", default="")
DISCORD_API_BASE = env("DISCORD_API_BASE", default="https://discord.com/api/v10")
DISCORD_TIMEOUT = env.float("DISCORD_TIMEOUT", default=10)
# Discord's undocumented per-channel limit (about 30 messages a minute), paced by the worker.
DISCORD_CHANNEL_LIMIT = env.int("DISCORD_CHANNEL_LIMIT", default=30)
DISCORD_CHANNEL_WINDOW = env.float("DISCORD_CHANNEL_WINDOW", default=60)
# Retries after 5xx, timeouts and network errors: base * 2^n seconds (jittered), capped; a
# message older than DISCORD_MAX_AGE seconds is given up (dead, and resendable from /mgmt).
DISCORD_BACKOFF_BASE = env.float("DISCORD_BACKOFF_BASE", default=2)
DISCORD_BACKOFF_CAP = env.float("DISCORD_BACKOFF_CAP", default=300)
DISCORD_MAX_AGE = env.float("DISCORD_MAX_AGE", default=24 * 3600)
DISCORD_POLL_INTERVAL = env.float("DISCORD_POLL_INTERVAL", default=0.2)
MGMT_PATH = env("MGMT_PATH", default="mgmt").strip("/")
# `manage.py prune` deletes what is older than this many days (unless --older-than says otherwise).
RETENTION_DAYS = env.int("RETENTION_DAYS", default=90)

DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=SITE_URL.startswith("https"))
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SITE_URL.startswith("https")
    # An https SITE_URL already redirects http and sends cookies over https only; HSTS (a year)
    # also closes the first plain-http request to an attacker. Subdomains and the browsers'
    # preload list reach beyond this shop (other sites on the domain, for months): opt in to those,
    # and until then their two deploy warnings are silenced on purpose.
    SECURE_HSTS_SECONDS = env.int(
        "SECURE_HSTS_SECONDS", default=365 * 24 * 3600 if SITE_URL.startswith("https") else 0
    )
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
    SILENCED_SYSTEM_CHECKS = [
        check
        for check, opted_in in (
            ("security.W005", SECURE_HSTS_INCLUDE_SUBDOMAINS),
            ("security.W021", SECURE_HSTS_PRELOAD),
        )
        if not opted_in
    ]

# Logs name events, deliveries and orders by id; never a webhook token, license key, email address
# or email body. LOG_FORMAT=json writes one JSON object per line. Every formatter masks sign-in
# tokens and email= in URLs (config/access_log.py), runserver's access lines included.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "config.access_log.MaskingFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {"()": "config.log_format.JSONFormatter"},
        "django.server": {
            "()": "config.access_log.MaskingServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env.str("LOG_FORMAT", default="plain"),
        },
        "django.server": {"class": "logging.StreamHandler", "formatter": "django.server"},
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # As Django configures it, with the masking formatter.
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        # Without Django's own handlers (a console one with DEBUG on, mail_admins): its records
        # reach the root's masking console once, not also unmasked (and twice) in dev.py's terminal.
        "django": {"handlers": [], "level": "INFO"},
        # urllib3's DEBUG lines carry request URLs, and a Discord webhook URL holds its token.
        "urllib3": {"level": "INFO"},
    },
}
