import io
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

from notifications.models import Destination, GlobalRateLimit
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


def all_workers_beat() -> None:
    for kind in ("deliver_notifications", "send_key_emails", "deliver_test_events"):
        beat(kind, f"host:{kind}")


def test_healthz_tells_discord_is_fine(client):
    all_workers_beat()
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["discord"] == {
        "state": "ok",
        "paused_until": None,
        "banned_since": None,
        "invalid_requests_10min": 0,
        "destinations_disabled": 0,
    }


def test_healthz_is_degraded_while_cloudflare_bans_the_address(client):
    """A ban stops every destination for minutes: the one thing an operator can only see here."""
    all_workers_beat()
    now = timezone.now()
    GlobalRateLimit.objects.create(
        blocked_until=now + timedelta(minutes=5),
        banned_since=now - timedelta(minutes=1),
        bans=1,
        invalid_requests=[now.timestamp() - 30, now.timestamp() - 20, now.timestamp() - 900],
    )
    body = client.get("/healthz").json()
    assert body["status"] == "degraded"
    assert body["discord"]["state"] == "banned"
    assert body["discord"]["banned_since"] == (now - timedelta(minutes=1)).isoformat()
    assert body["discord"]["paused_until"] == (now + timedelta(minutes=5)).isoformat()
    assert body["discord"]["invalid_requests_10min"] == 2


def test_healthz_tells_a_short_global_pause_without_alarm(client):
    all_workers_beat()
    GlobalRateLimit.objects.create(blocked_until=timezone.now() + timedelta(seconds=2))
    body = client.get("/healthz").json()
    assert (body["status"], body["discord"]["state"]) == ("ok", "paused")


def test_healthz_is_degraded_while_a_destination_is_switched_off(client):
    all_workers_beat()
    Destination.objects.create(
        name="Sales", webhook_id="1", token="t", enabled=False, disabled_reason="Deleted in Discord"
    )
    body = client.get("/healthz").json()
    assert (body["status"], body["discord"]["destinations_disabled"]) == ("degraded", 1)


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


# The README's production settings (Production): nothing else set.
PRODUCTION = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "LICENSE_HASH_KEY": secrets.token_urlsafe(50),
    "SITE_URL": "https://shop.example.com",
    "ALLOWED_HOSTS": "shop.example.com",
    "STRIPE_SECRET_KEY": "sk_live_abc",
    "STRIPE_WEBHOOK_SECRET": "whsec_real",
    "CACHE_URL": "redis://127.0.0.1:6379/0",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECURE_HSTS_SECONDS")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**clean, **PRODUCTION, **env},
        capture_output=True,
        text=True,
    )


def test_deploy_check_finds_no_warning_in_the_readmes_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_production_with_https_sends_hsts_for_a_year_but_not_for_subdomains_or_preload():
    code = (
        "from django.conf import settings as s; "
        "print(s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD)"
    )
    assert manage("shell", "-v", "0", "-c", code).stdout.split() == ["31536000", "False", "False"]
    opted_in = manage(
        "shell", "-v", "0", "-c", code, SECURE_HSTS_PRELOAD="1", SECURE_HSTS_INCLUDE_SUBDOMAINS="1"
    )
    assert opted_in.stdout.split() == ["31536000", "True", "True"]


@pytest.mark.parametrize("missing", ["SECRET_KEY", "LICENSE_HASH_KEY"])
def test_the_shop_refuses_to_start_without_its_keys_when_debug_is_off(missing):
    """The development key is in the repository: a production host that forgot to set its own
    would sign sessions and sign-in links (and hash license keys) with a key anyone can read."""
    result = manage("check", **{missing: ""})
    assert result.returncode != 0
    assert f"The shop's configuration is wrong: {missing} must be set" in result.stderr
    assert "Traceback" not in result.stderr  # said in words
    assert "django-insecure" not in result.stderr


def test_a_mistyped_forwarded_allow_ips_stops_the_shop_at_start_not_at_each_request():
    for typo in ("10.0.0.0/33", "10.0.0.5/8"):  # the second, gunicorn refuses too
        result = manage("check", FORWARDED_ALLOW_IPS=f"127.0.0.1,{typo}")
        assert result.returncode != 0
        assert f"FORWARDED_ALLOW_IPS: '{typo}' is neither" in result.stderr


def test_debug_runs_without_keys_with_the_development_ones():
    code = (
        "from django.conf import settings as s; print(s.SECRET_KEY.startswith('django-insecure'))"
    )
    result = manage("shell", "-v", "0", "-c", code, DEBUG="1", SECRET_KEY="", LICENSE_HASH_KEY="")
    assert result.stdout.split() == ["True"], result.stderr


def test_deploy_check_warns_when_staff_sign_in_with_a_password_alone():
    result = manage("check", "--deploy", STAFF_2FA_REQUIRED="0")
    assert "accounts.W001" in result.stderr + result.stdout


def test_deploy_check_still_warns_of_a_per_process_limiter_cache():
    result = manage("check", "--deploy", CACHE_URL="locmemcache://", GUNICORN_WORKERS="4")
    assert "licenses.W001" in result.stderr + result.stdout


def test_deploy_check_refuses_the_offline_test_gateway(settings):
    settings.STRIPE_SECRET_KEY = ""
    with pytest.raises(SystemCheckError, match=r"orders\.E003"):
        call_command("check", "--deploy", "--fail-level", "ERROR")


def test_every_model_change_has_its_migration():
    out = io.StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out)
    except SystemExit:
        pytest.fail(f"a model changed without a migration:\n{out.getvalue()}")


def test_postgresql_binds_parameters_on_the_server_and_prepares_repeated_statements():
    code = (
        "from django.conf import settings as s; o = s.DATABASES['default']['OPTIONS']; "
        "print(o['server_side_binding'], o['prepare_threshold'])"
    )
    url = "postgres://shop@db.example.com:5432/shop"
    assert manage("shell", "-v", "0", "-c", code, DATABASE_URL=url).stdout.split() == ["True", "5"]
    pooled = manage(
        "shell",
        "-v",
        "0",
        "-c",
        code,
        DATABASE_URL=url,
        DATABASE_PREPARE_THRESHOLD="off",
        DATABASE_SERVER_SIDE_BINDING="0",
    )
    assert pooled.stdout.split() == ["False", "None"]
