"""gunicorn -c config/gunicorn.py config.wsgi  (every value can be overridden by GUNICORN_* env)."""

import multiprocessing
import os


def worker_count() -> int:
    """GUNICORN_WORKERS, else 2 * cores + 1 (the licenses.W001 check reads it too)."""
    return int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))


# The loopback: the reverse proxy in front (FORWARDED_ALLOW_IPS) is the only way in, so nobody
# reaches gunicorn directly with forwarded headers of their own making.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = worker_count()
threads = int(os.environ.get("GUNICORN_THREADS", 1))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
# The access log masks sign-in tokens (/account/login/<token>/, which holds the email) and email=.
logger_class = "config.access_log.GunicornLogger"
# Stripe retries a webhook whose answer takes too long; keep requests short and bounded.
graceful_timeout = 20
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
