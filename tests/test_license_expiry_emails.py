"""The key email states each license's terms; the key-email worker reminds customers before a
license expires, once per license and expiry date, from an outbox row (never in a request)."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail

from licenses.emails import queue_expiry_reminders, send_key_emails
from licenses.management.commands.send_key_emails import Command
from licenses.models import KeyEmail, License
from orders.webhooks import handle_stripe_event
from testkit.stripe_objects import make_event, session_obj
from tests.factories import make_order, make_product

pytestmark = pytest.mark.django_db


def buy(quantity: int = 1, **terms):
    order = make_order(product=make_product(name="Tunewright", **terms), quantity=quantity)
    handle_stripe_event(make_event("checkout.session.completed", session_obj(order)))
    return order


def reminders() -> list[KeyEmail]:
    return list(KeyEmail.objects.filter(kind="expiry").order_by("id"))


def test_the_key_email_states_the_activation_limit_and_the_expiry():
    with time_machine.travel("2027-03-01 09:00Z", tick=False):
        order = buy(max_activations=3, license_days=365)
    send_key_emails()
    body = mail.outbox[0].body
    assert order.licenses.get().key in body
    assert "up to 3 devices at a time; it expires on 29 February 2028." in body


def test_the_key_email_says_unlimited_and_never_expiring_in_words():
    buy()
    send_key_emails()
    assert "as many devices as you like; it never expires." in mail.outbox[0].body


def test_one_device_is_singular():
    buy(max_activations=1)
    send_key_emails()
    assert "up to 1 device at a time" in mail.outbox[0].body


def test_a_license_is_reminded_14_days_before_it_expires_once():
    order = buy(license_days=30)
    license = order.licenses.get()
    send_key_emails()  # the keys
    assert queue_expiry_reminders() == 0  # 30 days left
    with time_machine.travel(license.expires_at - timedelta(days=14, seconds=1)):
        assert queue_expiry_reminders() == 0
    with time_machine.travel(license.expires_at - timedelta(days=13)):
        assert queue_expiry_reminders() == 1
        assert queue_expiry_reminders() == 0  # once per license and expiry date
        mail.outbox.clear()
        assert send_key_emails() == 1
    (reminder,) = reminders()
    assert (reminder.license, reminder.expires_at, reminder.status) == (
        license,
        license.expires_at,
        "sent",
    )
    (email,) = mail.outbox
    assert email.to == [order.email]
    assert email.subject == "Your Tunewright license expires soon"
    assert f"expires on {license.expires_at:%-d %B %Y}" in email.body
    assert license.key not in email.body and license.masked_key in email.body
    with time_machine.travel(license.expires_at - timedelta(days=1)):
        assert queue_expiry_reminders() == 0


def test_the_reminder_days_are_a_setting(settings):
    settings.LICENSE_EXPIRY_REMINDER_DAYS = 3
    license = buy(license_days=30).licenses.get()
    with time_machine.travel(license.expires_at - timedelta(days=5)):
        assert queue_expiry_reminders() == 0
    with time_machine.travel(license.expires_at - timedelta(days=2)):
        assert queue_expiry_reminders() == 1


def test_a_new_expiry_date_gets_a_reminder_of_its_own():
    license = buy(license_days=10).licenses.get()
    assert queue_expiry_reminders() == 1
    later = license.expires_at + timedelta(days=5)  # renewed, say
    License.objects.filter(pk=license.pk).update(expires_at=later)
    with time_machine.travel(later - timedelta(days=10)):
        assert queue_expiry_reminders() == 1
    assert [r.expires_at for r in reminders()] == [license.expires_at, later]


def test_each_license_of_an_order_is_reminded():
    buy(quantity=2, license_days=10)
    assert queue_expiry_reminders() == 2


@pytest.mark.parametrize("status", ["suspended", "revoked", "pending"])
def test_licenses_that_are_not_active_get_no_reminder(status):
    license = buy(license_days=10).licenses.get()
    License.objects.filter(pk=license.pk).update(status=status)
    assert queue_expiry_reminders() == 0


def test_expired_and_never_expiring_licenses_get_no_reminder():
    never = buy().licenses.get()
    assert never.expires_at is None
    gone = buy(license_days=10).licenses.get()
    with time_machine.travel(gone.expires_at + timedelta(seconds=1)):
        assert queue_expiry_reminders() == 0


def test_the_key_email_worker_queues_reminders_itself():
    buy(license_days=10)
    mail.outbox.clear()
    KeyEmail.objects.filter(kind="keys").update(status="sent")
    assert Command().step() == 1
    assert [m.subject for m in mail.outbox] == ["Your Tunewright license expires soon"]


def test_no_request_queues_a_reminder(client):
    order = buy(license_days=10)
    client.post(
        "/api/licenses/validate",
        {"key": order.licenses.get().key, "product": order.licenses.get().product.slug},
        content_type="application/json",
    )
    assert reminders() == []


def test_a_reminder_is_not_sent_when_the_license_was_revoked_meanwhile():
    license = buy(license_days=10).licenses.get()
    queue_expiry_reminders()
    mail.outbox.clear()
    License.objects.filter(pk=license.pk).update(status="revoked")
    send_key_emails(limit=5)
    assert all("expires soon" not in m.subject for m in mail.outbox)
    (reminder,) = reminders()
    assert (reminder.status, reminder.sent_at) == ("sent", None)
    assert reminder.last_error.startswith("not sent")
