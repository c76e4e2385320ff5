"""The database goes away and comes back: workers wait for it instead of dying, a key email sent
during the outage is recorded once it answers (not sent again), and the webhook answers 5xx so
Stripe retries.

The outage is Django's own hook: an execute wrapper that fails statements with the
OperationalError a PostgreSQL that went away raises (tests/test_soak.py stops a real one).
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import OperationalError, connection

from licenses.emails import queue_key_email, send_key_emails
from licenses.models import KeyEmail, KeyEmailStatus
from orders.models import Order
from testkit.signing import signed_post
from testkit.stripe_objects import make_event, session_obj
from tests.factories import make_order
from workers import command
from workers.command import when_database_answers
from workers.models import Heartbeat

pytestmark = pytest.mark.django_db(transaction=True)


class Outage:
    """Fails the next `statements` statements on this thread's connection, then answers."""

    def __init__(self) -> None:
        self.failing, self.refused, self.table = 0, 0, ""

    def begin(self, statements: int, *, table: str = "") -> None:
        """From now on (from the first statement reading `table`, if given)."""
        self.failing, self.table = statements, table

    def __call__(self, execute, sql, params, many, context):
        if self.table and self.table not in sql:
            return execute(sql, params, many, context)
        self.table = ""
        if self.failing:
            self.failing -= 1
            self.refused += 1
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)


@contextmanager
def outage(statements: int = 0) -> Iterator[Outage]:
    down = Outage()
    down.begin(statements)
    with connection.execute_wrapper(down):
        yield down


@pytest.fixture(autouse=True)
def short_waits(monkeypatch):
    monkeypatch.setattr(command, "FIRST_WAIT", 0.01)
    monkeypatch.setattr(command, "MAX_WAIT", 0.02)


def test_a_call_is_retried_until_the_database_answers(caplog):
    make_order()
    with outage(statements=3) as down, caplog.at_level(logging.WARNING, "workers"):
        count = when_database_answers(lambda: KeyEmail.objects.count() + 1)
    assert count == 1
    assert down.refused == 3
    warnings = [r.getMessage() for r in caplog.records if r.name == "workers.command"]
    assert len(warnings) == 2  # once when it went away, once when it came back
    assert "unreachable" in warnings[0] and "answers again" in warnings[1]


def test_a_call_that_works_logs_nothing(caplog):
    with caplog.at_level(logging.DEBUG, "workers"):
        assert when_database_answers(lambda: 42) == 42
    assert not [r for r in caplog.records if r.name == "workers.command"]


def test_waiting_ends_when_the_worker_is_told_to_stop():
    with outage(statements=10**6) as down:
        result = when_database_answers(KeyEmail.objects.count, stopping=lambda: down.refused >= 2)
    assert result is None
    assert down.refused == 2


def test_other_errors_are_not_taken_for_an_outage():
    with pytest.raises(ZeroDivisionError):
        when_database_answers(lambda: 1 / 0)


def test_inside_a_transaction_the_error_goes_to_whoever_opened_it():
    from django.db import transaction

    with pytest.raises(OperationalError), transaction.atomic(), outage(statements=1):
        when_database_answers(KeyEmail.objects.count)


def test_a_worker_command_outlives_an_outage_and_does_its_work():
    queue_key_email(make_order().pk)
    with outage(statements=4) as down:
        call_command("send_key_emails", "--once", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert down.refused == 4
    assert KeyEmail.objects.get().status == KeyEmailStatus.SENT
    assert len(mail.outbox) == 1


class OutageOnSend:
    """A mail server that accepts the email, and the database goes away at that moment."""

    down: Outage

    def __init__(self, *args, **kwargs) -> None:
        pass

    def send_messages(self, messages) -> int:
        mail.outbox.extend(messages)
        OutageOnSend.down.begin(3)
        return len(messages)


def test_a_key_email_sent_during_an_outage_is_recorded_when_the_database_answers(settings):
    settings.EMAIL_BACKEND = "tests.test_database_outage.OutageOnSend"
    queue_key_email(make_order().pk)
    with outage() as down:
        OutageOnSend.down = down
        assert send_key_emails(limit=1) == 1
    assert down.refused == 3
    email = KeyEmail.objects.get()
    assert (email.status, email.attempts) == (KeyEmailStatus.SENT, 0)
    assert send_key_emails() == 0  # nothing left to send: not twice
    assert len(mail.outbox) == 1


def test_a_key_email_claimed_as_the_database_goes_away_is_sent_once_it_answers():
    """Not counted as a mail failure, and not left under its lease for ten minutes."""
    queue_key_email(make_order().pk)
    with outage() as down:
        down.begin(3, table="licenses_license")  # reading the keys, after the claim
        assert send_key_emails(limit=1) == 1
    assert down.refused == 3
    email = KeyEmail.objects.get()
    assert (email.status, email.attempts, email.last_error) == (KeyEmailStatus.SENT, 0, "")
    assert len(mail.outbox) == 1


def test_a_heartbeat_during_an_outage_waits_for_the_database():
    with outage(statements=2) as down:
        when_database_answers(lambda: command.beat("send_key_emails", "host:1"))
    assert down.refused == 2
    assert Heartbeat.objects.filter(name="host:1").exists()


def test_the_webhook_answers_500_while_the_database_is_down_so_stripe_retries(client):
    order = make_order()
    event = make_event("checkout.session.completed", session_obj(order))
    client.raise_request_exception = False
    with outage(statements=10**6):
        down = signed_post(client, event)
    assert down.status_code == 500
    assert Order.objects.get(pk=order.pk).status == "pending"
    again = signed_post(client, event)
    assert again.status_code == 200
    assert Order.objects.get(pk=order.pk).status == "completed"


def test_a_discord_message_sent_during_an_outage_is_recorded_when_the_database_answers(
    fake_discord, monkeypatch
):
    from notifications import worker
    from notifications.models import Delivery, DeliveryStatus
    from notifications.outbox import enqueue

    destination = fake_discord.destination("orders")
    enqueue("order.completed", {"title": "Order completed: order 1"})
    real_execute = worker.execute_webhook

    def execute_then_outage(*args, **kwargs):
        answer = real_execute(*args, **kwargs)
        down.begin(3)  # Discord posted it; the database goes away before the record
        return answer

    monkeypatch.setattr(worker, "execute_webhook", execute_then_outage)
    with outage() as down:
        assert worker.deliver_one("test")
    assert down.refused == 3
    delivery = Delivery.objects.get(destination=destination)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 1)
    assert worker.deliver_due("test") == 0
    assert [r.status for r in fake_discord.requests] == [200]
