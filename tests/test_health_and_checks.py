import os
import secrets
import subprocess
import sys
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import OperationalError
from django.utils import timezone

from tests.factories import make_order
from workers.command import beat

pytestmark = pytest.mark.django_db


def test_healthz_reports_every_worker_the_test_mode_needs_with_its_backlog(client):
    make_order()  # an order.pending notification waits for a destination's worker: none yet
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"]) == ("degraded", "ok")
    assert set(body["workers"]) == {
        "deliver_notifications",
        "send_key_emails",
        "deliver_test_events",
    }
    assert body["workers"]["send_key_emails"] == {
        "state": "never seen",
        "seen_at": None,
        "backlog": 0,
    }


def test_healthz_is_ok_once_each_expected_worker_beats_and_stale_when_one_stops(client):
    for kind in ("deliver_notifications", "send_key_emails", "deliver_test_events"):
        beat(kind, f"host:{kind}")
    assert client.get("/healthz").json()["status"] == "ok"

    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        body = client.get("/healthz").json()
    assert body["status"] == "degraded"
    assert {w["state"] for w in body["workers"].values()} == {"stale"}


def test_healthz_does_not_expect_the_test_gateway_worker_with_stripe_configured(client, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_abc"
    for kind in ("deliver_notifications", "send_key_emails"):
        beat(kind, f"host:{kind}")
    body = client.get("/healthz").json()
    assert set(body["workers"]) == {"deliver_notifications", "send_key_emails"}
    assert body["status"] == "ok"


def test_healthz_answers_503_when_the_database_is_down(client, monkeypatch):
    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("django.db.models.sql.compiler.SQLCompiler.execute_sql", down)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"database": "down"}


def test_deploy_check_rejects_stripe_keys_without_a_webhook_secret(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_abc"
    with pytest.raises(SystemCheckError, match=r"orders\.E001"):
        call_command("check", "--deploy", "--fail-level", "ERROR")


def test_deploy_check_passes_the_production_settings_built_from_the_environment():
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "SITE_URL": "https://shop.example.com",
        "ALLOWED_HOSTS": "shop.example.com",
        "SECURE_HSTS_SECONDS": "31536000",
        "STRIPE_SECRET_KEY": "sk_live_abc",
        "STRIPE_WEBHOOK_SECRET": "whsec_real",
        "CACHE_URL": "redis://127.0.0.1:6379/0",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_deploy_check_refuses_the_offline_test_gateway(settings):
    settings.STRIPE_SECRET_KEY = ""
    with pytest.raises(SystemCheckError, match=r"orders\.E003"):
        call_command("check", "--deploy", "--fail-level", "ERROR")
