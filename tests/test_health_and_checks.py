import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import OperationalError

from notifications.worker import beat

pytestmark = pytest.mark.django_db


def test_healthz_answers_200_with_the_worker_and_the_backlog(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "database": "ok",
        "worker": "never seen",
        "worker_seen_at": None,
        "outbox_backlog": 0,
        "outbox_dead": 0,
    }
    beat("host:1")
    assert client.get("/healthz").json()["worker"] == "ok"


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
