"""A fixed-window counter in Django's cache. The counts are as shared as the cache is: set
CACHE_URL to a shared cache when several processes serve the API."""

import time

from django.core.cache import cache


def hit(scope: str, ident: str, *, limit: int, window: int) -> int:
    """Count a request; returns 0 if it is allowed, else the seconds until the window resets."""
    now = time.time()
    start = int(now // window * window)
    key = f"rl:{scope}:{ident}:{start}"
    cache.add(key, 0, timeout=window + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window + 1)
        count = 1
    if count <= limit:
        return 0
    return max(1, int(start + window - now + 0.999))
