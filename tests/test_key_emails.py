"""The key-email worker: pending, sent or dead; bounded work per tick during a mail outage;
dead emails visible in /healthz and sent again by staff."""

import smtplib
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import IntegrityError
from django.utils import timezone

from accounts.models import User
from audit.models import Action
from licenses.emails import MAX_ATTEMPTS, queue_key_email, send_key_emails
from licenses.management.commands.send_key_emails import Command
from licenses.models import KeyEmail, KeyEmailStatus
from tests.factories import make_order
from tests.mgmt_support import staff_member

pytestmark = pytest.mark.django_db


class DownBackend:
    """A mail server that refuses every connection, counting the tries."""

    tries = 0

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        DownBackend.tries += 1
        raise smtplib.SMTPServerDisconnected("connection lost")


@pytest.fixture
def mail_down(settings):
    DownBackend.tries = 0
    settings.EMAIL_BACKEND = "tests.test_key_emails.DownBackend"
    return DownBackend


def queued(count: int = 1) -> list[KeyEmail]:
    return [queue_key_email(make_order().pk) for _ in range(count)]


def statuses() -> list[str]:
    return list(KeyEmail.objects.order_by("id").values_list("status", flat=True))


def test_a_key_email_is_pending_until_the_worker_sends_it():
    (email,) = queued()
    assert email.status == KeyEmailStatus.PENDING
    assert send_key_emails() == 1
    email.refresh_from_db()
    assert (email.status, email.attempts, len(mail.outbox)) == ("sent", 0, 1)
    assert email.sent_at is not None


def test_a_tick_during_a_mail_outage_tries_one_email_and_stops(mail_down):
    queued(5)
    assert send_key_emails(limit=50) == 0
    assert mail_down.tries == 1
    assert sorted(KeyEmail.objects.values_list("attempts", flat=True)) == [0, 0, 0, 0, 1]


def test_every_attempt_counts_against_the_tick_limit():
    queued(3)
    assert send_key_emails(limit=2) == 2
    assert statuses() == ["sent", "sent", "pending"]


def test_one_worker_step_tries_at_most_one_email_so_sigterm_is_heard_between_emails(mail_down):
    queued(3)
    assert Command().step() == 0  # nothing sent: the loop rests before the next email
    assert mail_down.tries == 1
    mail_down.tries = 0
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        Command().step()
    assert mail_down.tries == 1


def test_an_email_that_used_up_its_attempts_is_dead_and_never_tried_again(mail_down):
    (email,) = queued()
    KeyEmail.objects.filter(pk=email.pk).update(attempts=MAX_ATTEMPTS - 1)
    send_key_emails()
    email.refresh_from_db()
    assert (email.status, email.attempts, email.next_attempt_at) == ("dead", MAX_ATTEMPTS, None)
    assert "SMTPServerDisconnected" in email.last_error

    with time_machine.travel(timezone.now() + timedelta(days=30)):
        assert send_key_emails() == 0
    assert mail_down.tries == 1


def test_the_database_refuses_a_key_email_status_it_does_not_know():
    (email,) = queued()
    with pytest.raises(IntegrityError):
        KeyEmail.objects.filter(pk=email.pk).update(status="lost")


def test_healthz_counts_dead_key_emails_apart_from_the_backlog(client):
    first, second, _waiting = queued(3)
    KeyEmail.objects.filter(pk__in=[first.pk, second.pk]).update(status=KeyEmailStatus.DEAD)
    body = client.get("/healthz").json()
    assert body["key_emails_dead"] == 2
    assert body["workers"]["send_key_emails"]["backlog"] == 1


def test_staff_send_dead_key_emails_again_from_the_admin(client):
    (email,) = queued()
    KeyEmail.objects.filter(pk=email.pk).update(status=KeyEmailStatus.DEAD, attempts=MAX_ATTEMPTS)
    client.force_login(User.objects.create_superuser("boss@example.com", "pw"))
    page = client.post(
        "/admin/licenses/keyemail/",
        {"action": "licenses_send_key_email_again", "_selected_action": [email.pk]},
        follow=True,
    ).content.decode()
    email.refresh_from_db()
    assert email.status == "pending"
    assert "queued again" in page
    assert Action.objects.get().command == "licenses.send_key_email_again"


def dead_email(order=None) -> KeyEmail:
    email = queue_key_email((order or make_order()).pk)
    KeyEmail.objects.filter(pk=email.pk).update(
        status=KeyEmailStatus.DEAD, attempts=MAX_ATTEMPTS, last_error="SMTPServerDisconnected"
    )
    return email


def send_again_url(email: KeyEmail) -> str:
    return f"/mgmt/orders/{email.order.number}/emails/{email.pk}/send-again/"


def test_staff_send_a_dead_email_again_from_the_orders_page_on_mgmt(client):
    email = dead_email()
    staff = staff_member(role="Support")
    client.force_login(staff)

    page = client.get(f"/mgmt/orders/{email.order.number}/").content.decode()
    assert f'href="{send_again_url(email)}"' in page
    confirm = client.get(send_again_url(email)).content.decode()
    assert "License keys" in confirm and email.order.email in confirm
    response = client.post(send_again_url(email))

    assert response.status_code == 303
    email.refresh_from_db()
    assert (email.status, email.attempts, email.next_attempt_at) == ("pending", 0, None)
    action = Action.objects.get()
    assert (action.command, action.user, action.order_id) == (
        "licenses.send_key_email_again",
        staff,
        email.order_id,
    )
    assert send_key_emails() == 1
    assert len(mail.outbox) == 1


def test_an_email_not_dead_has_no_send_again_and_a_post_is_refused_in_words(client):
    email = queue_key_email(make_order().pk)
    client.force_login(staff_member(role="Support"))
    page = client.get(f"/mgmt/orders/{email.order.number}/").content.decode()
    assert "send-again" not in page

    response = client.post(send_again_url(email), follow=True)
    assert "Only a dead email is sent again." in response.content.decode()
    email.refresh_from_db()
    assert email.status == "pending"
    assert not Action.objects.filter(outcome="done").exists()


def test_another_orders_email_is_not_found_under_this_orders_number(client):
    email, other = dead_email(), make_order()
    client.force_login(staff_member(role="Support"))
    url = f"/mgmt/orders/{other.number}/emails/{email.pk}/send-again/"
    assert client.post(url).status_code == 404
    email.refresh_from_db()
    assert email.status == "dead"
