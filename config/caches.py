"""CACHE_URL as Django's CACHES entry: Redis through Django's own backend, anything else as
django-environ reads it."""

from urllib.parse import parse_qs, urlencode, urlsplit

import environ

REDIS_SCHEMES = ("redis", "rediss")
# A Redis that stops answering must not hold a web request (the limiter then lets it through).
REDIS_OPTIONS = {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}


def cache_config(url: str) -> dict:
    """django-environ would pick django-redis when it happens to be installed, and hands
    `key_prefix` to Django's own Redis backend in the wrong case (ignored); so redis:// and
    rediss:// URLs are built here. `?key_prefix=` sets KEY_PREFIX; other query arguments
    (`client_name`, `ssl_cert_reqs`, …) stay in the URL for redis-py."""
    parts = urlsplit(url)
    if parts.scheme not in REDIS_SCHEMES:
        return environ.Env.cache_url_config(url)
    query = parse_qs(parts.query)
    prefix = query.pop("key_prefix", [""])[0]
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": parts._replace(query=urlencode(query, doseq=True)).geturl(),
        "KEY_PREFIX": prefix,
        "OPTIONS": dict(REDIS_OPTIONS),
    }
