"""`manage.py prune`: what is past the age goes (in batches), what orders, redeliveries and
staff still need stays. Time moves with time_machine."""

from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from notifications.events import Event
from notifications.models import Delivery, DeliveryAttempt, Destination, Notification
from notifications.outbox import enqueue
from orders.models import OfflineEvent, OfflineObject, Order, StripeEvent
from orders.webhooks import handle_stripe_event
from testkit.stripe_objects import make_event, refund_obj, session_obj
from tests.factories import make_order
from workers import retention

pytestmark = pytest.mark.django_db


def prune(*args: str, days: float = 91) -> str:
    out = StringIO()
    with time_machine.travel(timezone.now() + timedelta(days=days)):
        call_command("prune", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def paid_event(order: Order) -> StripeEvent:
    return handle_stripe_event(make_event("checkout.session.completed", session_obj(order)))


# Stripe events.


def test_old_event_payloads_are_dropped_and_their_rows_still_catch_a_redelivery():
    order = make_order()
    event = make_event("checkout.session.completed", session_obj(order))
    handle_stripe_event(event)
    out = prune()
    stored = StripeEvent.objects.get(id=event["id"])
    assert (stored.payload, stored.outcome, stored.order) == ({}, "applied", order)
    assert "stripe event payloads: 1 dropped" in out

    again = handle_stripe_event(event)  # Stripe (or a replay) delivers it once more
    assert again.payload == {}
    assert order.transitions.count() == 2  # created, then completed: nothing new


def test_events_waiting_for_their_order_keep_their_payload():
    order = make_order()
    waiting = handle_stripe_event(make_event("refund.created", refund_obj(order, "re_1", 500)))
    assert waiting.outcome == "unknown_order"
    prune()
    waiting.refresh_from_db()
    assert waiting.payload["type"] == "refund.created"


def test_nothing_younger_than_the_age_is_pruned():
    event = paid_event(make_order())
    out = prune(days=89)
    event.refresh_from_db()
    assert event.payload != {}
    assert "stripe event payloads: 0 dropped" in out


def test_the_default_age_is_retention_days(settings):
    settings.RETENTION_DAYS = 10
    event = paid_event(make_order())
    prune(days=11)
    event.refresh_from_db()
    assert event.payload == {}


def test_older_than_takes_minutes_hours_or_days():
    event = paid_event(make_order())
    prune("--older-than", "36h", days=1)
    event.refresh_from_db()
    assert event.payload != {}
    prune("--older-than", "36h", days=2)
    event.refresh_from_db()
    assert event.payload == {}


def test_a_bad_age_is_refused():
    with pytest.raises(CommandError, match="90m, 12h or 3d"):
        call_command("prune", "--older-than", "3w")


# Notifications.


def notification(*statuses: str) -> Notification:
    """A notification with one delivery per status, each with one attempt logged."""
    destinations = [
        Destination.objects.get_or_create(
            name=f"channel-{n}", defaults={"webhook_id": f"{n}" * 17, "token": "t" * 68}
        )[0]
        for n in range(len(statuses))
    ]
    made = enqueue(Event.ORDER_PENDING, {"title": "Order pending"})
    for destination, status in zip(destinations, statuses, strict=True):
        delivery, _ = Delivery.objects.update_or_create(
            notification=made, destination=destination, defaults={"status": status}
        )
        DeliveryAttempt.objects.create(delivery=delivery, status_code=200)
    return made


def test_sent_notifications_go_with_their_deliveries_and_attempts():
    sent = notification("sent", "sent")
    out = prune()
    assert not Notification.objects.filter(pk=sent.pk).exists()
    assert not Delivery.objects.filter(notification_id=sent.pk).exists()
    assert not DeliveryAttempt.objects.filter(delivery__notification_id=sent.pk).exists()
    assert "notifications: 1 deleted" in out


def test_notifications_with_a_pending_or_dead_delivery_are_kept():
    pending, dead = notification("sent", "pending"), notification("dead")
    prune()
    assert set(Notification.objects.values_list("pk", flat=True)) >= {pending.pk, dead.pk}
    assert Delivery.objects.filter(notification=pending).count() == 2


def test_a_notification_no_destination_received_goes_too():
    previewed = notification()  # recorded for the preview only
    prune()
    assert not Notification.objects.filter(pk=previewed.pk).exists()


# The offline test gateway.


def offline_event(event_id: str, *, delivered: bool) -> OfflineEvent:
    now = timezone.now()
    return OfflineEvent.objects.create(
        id=event_id,
        type="checkout.session.completed",
        payload={},
        deliver_after=now,
        delivered_at=now if delivered else None,
    )


def offline_object(object_id: str, kind: str, status: str = "") -> OfflineObject:
    return OfflineObject.objects.create(id=object_id, kind=kind, data={"status": status})


def test_delivered_test_events_go_and_waiting_ones_stay():
    offline_event("evt_delivered", delivered=True)
    offline_event("evt_waiting", delivered=False)
    out = prune()
    assert list(OfflineEvent.objects.values_list("id", flat=True)) == ["evt_waiting"]
    assert "test gateway events: 1 deleted" in out


def test_test_gateway_objects_go_unless_an_open_session_a_refund_or_a_dispute_needs_them():
    offline_object("cs_open", "session", "open")
    offline_object("cs_complete", "session", "complete")
    offline_object("cs_expired", "session", "expired")
    offline_object("ch_1", "charge", "succeeded")  # an old test order may still be refunded
    offline_object("dp_open", "dispute", "needs_response")
    offline_object("dp_won", "dispute", "won")
    offline_object("re_1", "refund", "succeeded")
    prune()
    assert set(OfflineObject.objects.values_list("id", flat=True)) == {
        "cs_open",
        "ch_1",
        "dp_open",
    }


# How it runs.


def test_a_dry_run_counts_and_changes_nothing():
    event = paid_event(make_order())
    notification("sent")
    offline_event("evt_delivered", delivered=True)
    out = prune("--dry-run")
    event.refresh_from_db()
    assert event.payload != {}
    assert OfflineEvent.objects.exists()
    assert "stripe event payloads: 1 would be dropped" in out
    assert f"notifications: {Notification.objects.count()} would be deleted" in out
    assert "test gateway events: 1 would be deleted" in out


def test_it_works_in_batches_until_everything_past_the_age_is_done(monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 2)
    for n in range(5):
        offline_event(f"evt_{n}", delivered=True)
    out = prune()
    assert not OfflineEvent.objects.exists()
    assert "test gateway events: 5 deleted" in out
