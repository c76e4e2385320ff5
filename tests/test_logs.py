"""Logs: one line per webhook event and per Discord delivery attempt, with ids and outcome and
never a webhook token, license key, email address or email body; JSON lines with LOG_FORMAT=json."""

import json
import logging
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core import mail

from config.log_format import JSONFormatter
from licenses.emails import send_key_emails
from notifications.worker import deliver_due, deliver_one
from orders.models import Order
from orders.webhooks import handle_stripe_event
from testkit.stripe_objects import make_event, session_obj
from tests.factories import make_order, make_product

pytestmark = pytest.mark.django_db(transaction=True)


def lines(caplog, logger: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == logger]


def test_each_webhook_event_is_one_line_with_its_id_type_and_outcome_duplicates_too(caplog):
    caplog.set_level(logging.INFO)
    event = make_event("checkout.session.completed", session_obj(make_order()))
    handle_stripe_event(event)
    handle_stripe_event(event)
    first, again = lines(caplog, "orders.webhooks")
    assert (first.event_id, first.event_type, first.outcome) == (
        event["id"],
        "checkout.session.completed",
        "applied",
    )
    assert (again.event_id, again.outcome) == (event["id"], "duplicate")
    assert event["id"] in first.getMessage() and "applied" in first.getMessage()


def test_each_discord_attempt_is_one_line_with_ids_destination_status_and_batch(
    caplog, fake_discord
):
    caplog.set_level(logging.INFO)
    fake_discord.destination("sales")
    order = make_order()
    deliver_due()
    (line,) = lines(caplog, "notifications.worker")
    notification = order.notifications.get()
    delivery = notification.deliveries.get()
    assert (line.destination, line.status_code, line.batch_size, line.outcome) == (
        "sales",
        200,
        1,
        "sent",
    )
    assert (line.delivery_ids, line.notification_ids) == ([delivery.pk], [notification.pk])


def test_a_failed_attempt_is_logged_with_its_outcome(caplog, fake_discord):
    caplog.set_level(logging.INFO)
    fake_discord.destination("sales")
    fake_discord.fail_next("500")
    make_order()
    deliver_one("test")  # one request: a retry may come due on a slow machine
    (line,) = lines(caplog, "notifications.worker")
    assert (line.status_code, line.outcome) == (500, "retry")


def test_a_full_purchase_delivery_and_key_email_log_no_token_key_or_email(
    client, caplog, fake_discord
):
    caplog.set_level(logging.DEBUG)
    destination = fake_discord.destination("sales")
    product = make_product(license_prefix="PSP")
    response = client.post(f"/checkout/{product.slug}/", {"email": "ada@example.com"})
    order = Order.objects.get(email="ada@example.com")
    client.post(response["Location"], {"action": "pay"})
    deliver_due()
    send_key_emails()

    order.refresh_from_db()
    key = order.licenses.get().key
    (sent,) = mail.outbox
    assert order.status == "completed" and key in sent.body  # the secrets exist: now look
    plain, as_json = logging.Formatter("%(message)s"), JSONFormatter()
    logged = "\n".join(
        f"{plain.format(record)}\n{as_json.format(record)}" for record in caplog.records
    )
    assert lines(caplog, "orders.webhooks") and lines(caplog, "notifications.worker")
    for secret in (destination.token, key, key.replace("-", ""), "ada@example.com", sent.body):
        assert secret not in logged


def test_log_format_json_writes_one_json_object_per_line():
    code = (
        "import logging; logging.getLogger('orders.webhooks').warning("
        "'stripe event %s: %s', 'evt_1', 'applied', extra={'event_id': 'evt_1'})"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=settings.BASE_DIR,
        env={**os.environ, "LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        check=True,
    )
    (line,) = [json.loads(text) for text in result.stderr.splitlines() if text.startswith("{")]
    assert line["message"] == "stripe event evt_1: applied"
    assert (line["level"], line["logger"], line["event_id"]) == (
        "WARNING",
        "orders.webhooks",
        "evt_1",
    )
    assert "time" in line


def test_the_json_formatter_keeps_the_traceback():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, "", 0, "failed", None, sys.exc_info())
    entry = json.loads(JSONFormatter().format(record))
    assert entry["message"] == "failed"
    assert "ValueError: boom" in entry["exception"]


def test_a_deleted_webhook_is_logged_as_the_destination_refused(caplog, fake_discord):
    caplog.set_level(logging.INFO)
    destination = fake_discord.destination("sales")
    fake_discord.delete_webhook(destination.webhook_id)
    make_order()
    deliver_one("test")  # one request: a retry may come due on a slow machine
    (line,) = lines(caplog, "notifications.worker")
    assert (line.status_code, line.outcome) == (404, "destination_refused")


def test_a_cloudflare_ban_is_logged_as_banned(caplog, fake_discord):
    caplog.set_level(logging.INFO)
    fake_discord.destination("sales")
    fake_discord.ban()
    make_order()
    deliver_one("test")  # one request: a retry may come due on a slow machine
    (line,) = lines(caplog, "notifications.worker")
    assert (line.status_code, line.outcome) == (429, "banned")
