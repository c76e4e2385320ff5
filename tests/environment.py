"""A pytest plugin (pyproject's addopts load it with -p, before pytest-django reads the settings):
the keys the settings require when DEBUG is off, as in production and as pytest-django runs the
tests. Test values only; subprocesses the tests start (manage.py, gunicorn, dev.py) inherit them,
and a key already in the environment wins."""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-" + "t" * 40)
os.environ.setdefault("LICENSE_HASH_KEY", "tests-only-license-hash-key-" + "t" * 30)
