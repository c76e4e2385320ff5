from django.conf import settings
from django.core import checks

from config.gunicorn import worker_count

# Caches whose counts live in one process: each gunicorn worker would count on its own.
PER_PROCESS = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
}


@checks.register(checks.Tags.caches)
def check_limiter_cache_is_shared(app_configs, **kwargs) -> list[checks.CheckMessage]:
    backend = settings.CACHES["default"]["BACKEND"]
    workers = worker_count()
    if settings.DEBUG or workers <= 1 or backend not in PER_PROCESS:
        return []
    return [
        checks.Warning(
            f"The validate API's rate limits are counted per process ({backend.rsplit('.', 1)[-1]}) "
            f"while gunicorn runs {workers} workers: each lets LICENSE_VALIDATE_RATE through.",
            hint="Set CACHE_URL=redis://127.0.0.1:6379/0 (a Redis that every web server reaches).",
            id="licenses.W001",
        )
    ]
