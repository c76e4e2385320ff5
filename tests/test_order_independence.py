"""Stripe delivers events at least once and in any order (DESIGN, "Orders and the state machine").

For each order lifecycle, hypothesis delivers the lifecycle's events in random orders with random
duplicates; the order must end where the in-order sequence ends, with one audit row per real change,
and delivering everything once more must change nothing and tell nobody.
"""

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import User
from orders import commands as order_commands
from orders import signals
from orders.checkout import start_checkout
from orders.models import OfflineEvent, OfflineObject, Order, StripeEvent
from orders.webhooks import handle_stripe_event
from testkit.lifecycles import (
    LIFECYCLES,
    assert_one_row_per_real_change,
    audit_trail,
    events_for,
    final_state,
)
from testkit.signing import signed_post
from testkit.stripe_objects import intent_failed_obj, make_event, refund_obj, session_obj
from tests.factories import make_order

pytestmark = pytest.mark.django_db

SIGNALS = [
    "order_transitioned",
    "payment_completed",
    "payment_failed",
    "refund_counted",
    "refund_failed",
    "refund_pending",
    "dispute_changed",
    "fraud_warning_raised",
    "review_changed",
]


@pytest.fixture
def sent():
    """How many times each of `orders.signals` was sent."""
    counts: Counter[str] = Counter()

    def receiver(name: str) -> Callable[..., None]:
        def record(sender, **kwargs):
            counts[name] += 1

        return record

    for name in SIGNALS:
        getattr(signals, name).connect(receiver(name), weak=False, dispatch_uid=f"any-{name}")
    yield counts
    for name in SIGNALS:
        getattr(signals, name).disconnect(dispatch_uid=f"any-{name}")


def deliver_directly(events: list[dict[str, Any]]) -> None:
    for event in events:
        # A copy per delivery, as if parsed from the wire: no delivery sees another's objects.
        handle_stripe_event(json.loads(json.dumps(event)))


def deliver_signed(events: list[dict[str, Any]]) -> None:
    client = Client()
    for event in events:
        response = signed_post(client, event)
        assert response.status_code == 200, response.content


def assert_no_embed_told_twice(order: Order) -> None:
    """Each notification says something the others do not (its time aside)."""
    told = [
        (
            n.event,
            json.dumps({k: v for k, v in n.embed.items() if k != "timestamp"}, sort_keys=True),
        )
        for n in order.notifications.all()
    ]
    assert len(told) == len(set(told)), Counter(told).most_common(3)


def shuffled_with_duplicates(count: int) -> st.SearchStrategy[list[int]]:
    """Indexes of `count` events, each one to three times, in any order."""
    return st.lists(st.integers(1, 3), min_size=count, max_size=count).flatmap(
        lambda times: st.permutations([n for n, k in enumerate(times) for _ in range(k)])
    )


def check_any_delivery_order(
    lifecycle: str,
    sent: Counter[str],
    deliver: Callable[[list[dict[str, Any]]], None],
    max_examples: int,
) -> None:
    in_order = make_order()
    deliver_directly(events_for(in_order, lifecycle))
    expected = final_state(in_order)
    assert expected["status"] == LIFECYCLES[lifecycle][1]
    assert_one_row_per_real_change(in_order)

    # Each example gets a fresh order; they share the test's transaction, nothing else.
    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(data=st.data())
    def delivered_in_any_order(data: st.DataObject) -> None:
        order = make_order()
        events = events_for(order, lifecycle)
        deliveries = data.draw(shuffled_with_duplicates(len(events)), label="deliveries")
        rows_before = len(audit_trail(order))
        sent.clear()

        deliver([events[n] for n in deliveries])

        assert final_state(order) == expected
        assert_one_row_per_real_change(order)
        assert sent["order_transitioned"] == len(audit_trail(order)) - rows_before
        assert sent["payment_completed"] == int(expected["paid"])
        stored = StripeEvent.objects.filter(id__in=[e["id"] for e in events])
        assert stored.count() == len(events)
        assert not stored.filter(outcome=StripeEvent.Outcome.UNKNOWN_ORDER).exists()

        assert_no_embed_told_twice(order)

        trail = audit_trail(order)
        sent.clear()
        deliver(events)
        assert audit_trail(order) == trail
        assert final_state(order) == expected
        assert sum(sent.values()) == 0, sent

    delivered_in_any_order()


@pytest.mark.parametrize("lifecycle", LIFECYCLES)
def test_any_order_and_duplicates_of_a_lifecycles_events_end_as_the_in_order_sequence(
    lifecycle, sent
):
    check_any_delivery_order(lifecycle, sent, deliver_directly, max_examples=25)


@pytest.mark.parametrize("lifecycle", LIFECYCLES)
def test_signed_webhook_posts_in_any_order_end_as_the_in_order_sequence(lifecycle, sent):
    check_any_delivery_order(lifecycle, sent, deliver_signed, max_examples=5)


def retried_after_a_decline(staff: User) -> tuple[Order, str, list[dict[str, Any]]]:
    """An order whose first attempt was declined and which staff retried. Returns it, the second
    attempt's PaymentIntent, and the events still to come: the first attempt's late ones (its
    decline again, another decline in the old tab, the expiry the retry asked for), the second
    attempt's payment and a full refund."""
    order = make_order()
    start_checkout(order)
    order.refresh_from_db()
    first = OfflineObject.objects.get(id=order.stripe_session_id).data
    declined = intent_failed_obj(order, id=first["payment_intent"])
    decline = make_event("payment_intent.payment_failed", declined)
    handle_stripe_event(decline)
    order_commands.retry.run(order, by=staff)
    order.refresh_from_db()
    assert (order.status, order.attempt) == ("pending", 2)
    expiry = OfflineEvent.objects.get(
        type="checkout.session.expired", payload__data__object__id=first["id"]
    )
    pi = OfflineObject.objects.get(id=order.stripe_session_id).data["payment_intent"]
    refund = {**refund_obj(order, f"re_{order.number}", order.subtotal_cents), "payment_intent": pi}
    return (
        order,
        pi,
        [
            decline,
            make_event("payment_intent.payment_failed", declined, created=decline["created"] + 1),
            expiry.payload,
            make_event("checkout.session.completed", session_obj(order, payment_intent=pi)),
            make_event("refund.created", refund),
        ],
    )


def state_after_retry(order: Order, second_payment_intent: str) -> dict[str, Any]:
    state = final_state(order)
    assert state.pop("payment_intent") == second_payment_intent
    return state


def test_a_retried_orders_late_first_attempt_events_never_undo_the_second_attempt(sent):
    staff = User.objects.create_superuser("boss@example.com", "pw")
    in_order, pi, events = retried_after_a_decline(staff)
    deliver_directly(events)
    expected = state_after_retry(in_order, pi)
    assert expected["status"] == "refunded"

    @settings(max_examples=25, deadline=None, database=None)
    @given(data=st.data())
    def delivered_in_any_order(data: st.DataObject) -> None:
        order, pi, events = retried_after_a_decline(staff)
        deliveries = data.draw(shuffled_with_duplicates(len(events)), label="deliveries")
        sent.clear()

        deliver_directly([events[n] for n in deliveries])

        assert state_after_retry(order, pi) == expected
        assert_one_row_per_real_change(order)
        assert sent["payment_completed"] == 1
        assert sent["payment_failed"] == 0

    delivered_in_any_order()
