"""dev.py, the README's first command: what it decides before it starts anything."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("dev", ROOT / "dev.py")
dev = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dev)


@pytest.mark.parametrize(
    ("key", "test_mode"), [("", True), ("sk_test_51Example", False), ("rk_live_x", False)]
)
def test_dev_py_reads_the_payment_mode_the_settings_decide(key, test_mode):
    # As dev.py runs it: a child process with the settings' environment (and .env, if any).
    env = {**os.environ, "STRIPE_SECRET_KEY": key, "DEBUG": "1"}
    assert dev.is_test_mode(env) is test_mode


def test_dev_py_is_not_fooled_by_what_django_prints_at_start(monkeypatch):
    # Django 5.2's shell prints "N objects imported automatically" before any code runs; the
    # probe must not read a shell's chatter.
    calls = []
    real = dev.manage
    monkeypatch.setattr(dev, "manage", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert dev.is_test_mode({**os.environ, "STRIPE_SECRET_KEY": ""}) is True
    assert calls == [("payment_mode",)]


@pytest.mark.parametrize(("key", "required"), [("", False), ("sk_test_51Example", True)])
def test_dev_py_learns_whether_staff_need_a_second_factor_for_its_banner(key, required):
    env = {**os.environ, "STRIPE_SECRET_KEY": key, "DEBUG": "1"}
    env.pop("STAFF_2FA_REQUIRED", None)
    assert dev.modes(env)["staff_2fa_required"] is required


@pytest.mark.parametrize(
    ("setting", "value", "words"),
    [
        ("CHECKOUT_EXPIRES_MINUTES", "abc", "CHECKOUT_EXPIRES_MINUTES cannot be read"),
        ("CHECKOUT_EXPIRES_MINUTES", "10", "CHECKOUT_EXPIRES_MINUTES is 10"),
        ("SECRET_KEY", "", "SECRET_KEY must be set when DEBUG is off"),
    ],
)
def test_a_bad_setting_stops_the_shop_with_its_words_not_a_traceback(setting, value, words):
    env = {**os.environ, setting: value, "SECRET_KEY": "s" * 50, "LICENSE_HASH_KEY": "h" * 50}
    env[setting] = value
    env.pop("DEBUG", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert words in result.stderr
    assert "Traceback" not in result.stderr
