"""The shop's settings for bench/mgmt_orders.py, which renders pages in-process: static URLs
without collectstatic's manifest (as in the tests)."""

from config.settings import *  # noqa: F403

STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
