"""Events that arrive before the order knows its PaymentIntent or charge wait, then apply."""

from typing import Any

import pytest

from orders import stripe_events
from orders.models import Dispute, Order, Refund, StripeEvent
from testkit.signing import signed_post
from testkit.stripe_objects import (
    API_WITHOUT_REFUND_EVENTS,
    charge_obj,
    dispute_obj,
    make_event,
    refund_obj,
)
from tests.factories import make_order
from tests.webhook.support import (
    last_move,
    pay,
    send,
)

pytestmark = pytest.mark.django_db


# Events that arrive before the order knows its PaymentIntent wait, then apply.

EARLY = {
    "charge.refunded": (lambda o: charge_obj(o, refunded=o.subtotal_cents), "refunded"),
    "refund.created": (lambda o: refund_obj(o, "re_1", o.subtotal_cents), "refunded"),
    "charge.dispute.created": (lambda o: dispute_obj(o, "dp_1"), "disputed"),
}


@pytest.mark.parametrize("early_type", list(EARLY))
def test_an_event_before_the_payment_waits_as_unknown_order_and_applies_with_the_session(
    client, order, early_type
):
    build, final = EARLY[early_type]
    # charge.refunded counts as a refund on the API versions that send no refund events.
    version = {"api_version": API_WITHOUT_REFUND_EVENTS} if early_type == "charge.refunded" else {}
    early = send(client, order, early_type, build(order), **version)
    assert (early.outcome, early.order, early.payment_intent_id) == (
        "unknown_order",
        None,
        f"pi_{order.number}",
    )
    assert order.status == "pending"

    session = pay(client, order)

    early.refresh_from_db()
    assert (early.outcome, early.order) == ("applied", order)
    assert session.outcome == "applied"
    assert order.status == final
    assert order.is_paid


def test_several_early_events_all_apply_when_the_session_arrives(client, order):
    send(client, order, "charge.dispute.created", dispute_obj(order, "dp_1"))
    send(client, order, "charge.dispute.closed", dispute_obj(order, "dp_1", "lost"))
    send(client, order, "refund.created", refund_obj(order, "re_1", 500))

    pay(client, order)

    assert set(StripeEvent.objects.values_list("outcome", flat=True)) == {"applied"}
    assert Dispute.objects.get(stripe_dispute_id="dp_1").status == "lost"
    assert Refund.objects.get(stripe_refund_id="re_1").order == order
    assert order.status == "refunded"
    assert last_move(order)[3] == "chargeback lost"


def test_an_early_event_for_another_payment_intent_keeps_waiting(client, order):
    other = make_order()
    early = send(client, other, "refund.created", refund_obj(other, "re_1", other.subtotal_cents))

    pay(client, order)

    early.refresh_from_db()
    assert early.outcome == "unknown_order"
    assert order.status == "completed"


def half_broken_charge(order: Order) -> dict[str, Any]:
    """A charge whose refunded total is fine but whose embedded refund lacks its amount."""
    charge = charge_obj(order, refunded=order.subtotal_cents)
    charge["refunds"] = {"data": [{"id": "re_x", "status": "succeeded", "currency": "usd"}]}
    return charge


@pytest.mark.parametrize(
    ("event_type", "build"),
    [
        (
            "refund.created",
            lambda o: {k: v for k, v in refund_obj(o, "re_1", 100).items() if k != "amount"},
        ),
        ("refund.created", lambda o: refund_obj(o, "re_1", 100, status="weird")),
        ("charge.refunded", half_broken_charge),
    ],
    ids=["no-amount", "unknown-status", "embedded-refund-without-amount"],
)
def test_a_malformed_early_event_is_refused_at_the_door_and_never_blocks_the_payment(
    client, order, event_type, build
):
    response = signed_post(client, make_event(event_type, build(order)))
    assert response.status_code == 400
    assert "malformed event" in response.json()["error"]

    pay(client, order)

    assert (order.status, order.charge_amount_refunded_cents) == ("completed", 0)
    assert not Refund.objects.exists()
    assert StripeEvent.objects.count() == 1


def test_an_early_event_that_fails_halfway_when_applied_late_changes_nothing(
    client, order, monkeypatch
):
    early = send(client, order, "charge.refunded", charge_obj(order, refunded=order.subtotal_cents))
    assert early.outcome == "unknown_order"
    real = stripe_events.HANDLERS["charge.refunded"]

    def fails_after_merging(order, charge, event, changes):
        real(order, charge, event, changes)  # the order's facts have changed by now
        raise ValueError("something Stripe never sent right")

    monkeypatch.setitem(stripe_events.HANDLERS, "charge.refunded", fails_after_merging)
    pay(client, order)

    assert (order.status, order.charge_amount_refunded_cents) == ("completed", 0)
    early.refresh_from_db()
    assert (early.outcome, early.order) == ("unknown_order", order)
    assert early.detail == "could not be applied late: ValueError"
