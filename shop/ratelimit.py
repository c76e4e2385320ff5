"""A fixed-window counter in Django's cache. The counts are as shared as the cache is: with
several processes (gunicorn workers, hosts) CACHE_URL must name a shared cache, Redis.

Counting is atomic where it matters: `add` (SET NX) creates a window's counter once and `incr`
(INCR) counts on the server, so concurrent requests in any number of processes never lose a count.
"""

import logging
import time

from django.core.cache import cache

log = logging.getLogger(__name__)

# Windows start at multiples of their length counted from this instant: the Unix epoch, so every
# process and host agrees on them. Tests count from their own start instead, so that a test
# shorter than a window never sees its counts cut in two by a window's end.
WINDOW_ORIGIN = 0.0


def _window_start(now: float, window: int) -> float:
    return WINDOW_ORIGIN + (now - WINDOW_ORIGIN) // window * window


def hit(scope: str, ident: str, *, limit: int, window: int) -> int:
    """Count a request; returns 0 if it is allowed, else the seconds until the window resets.
    When the cache does not answer the request is allowed: a Redis outage must not stop
    customers' software from checking its keys (only the counting is lost meanwhile)."""
    now = time.time()
    start = _window_start(now, window)
    try:
        count = _count(f"rl:{scope}:{ident}:{start:.0f}", timeout=window + 1)
    except Exception as error:  # the cache's own errors (redis.ConnectionError, timeouts)
        log.warning("rate limiter cache unavailable, request allowed: %s", type(error).__name__)
        return 0
    if count <= limit:
        return 0
    return max(1, int(start + window - now + 0.999))


def waiting(scope: str, ident: str, *, limit: int, window: int) -> int:
    """The seconds until the window resets if `limit` hits were already counted in it, else 0.
    Counts nothing: for limits on failures, which `hit` counts only when one happens."""
    now = time.time()
    start = _window_start(now, window)
    try:
        count = cache.get(f"rl:{scope}:{ident}:{start:.0f}") or 0
    except Exception as error:
        log.warning("rate limiter cache unavailable, request allowed: %s", type(error).__name__)
        return 0
    return max(1, int(start + window - now + 0.999)) if count >= limit else 0


def forget(scope: str, ident: str, *, window: int) -> None:
    """Start the window's count of `ident` again from zero (a success after a few failures)."""
    start = _window_start(time.time(), window)
    try:
        cache.delete(f"rl:{scope}:{ident}:{start:.0f}")
    except Exception as error:
        log.warning("rate limiter cache unavailable: %s", type(error).__name__)


def _count(key: str, *, timeout: int) -> int:
    for _ in range(3):
        if cache.add(key, 1, timeout=timeout):
            return 1
        try:
            return cache.incr(key)
        except ValueError:  # evicted between add and incr: create it again
            continue
    return 1
