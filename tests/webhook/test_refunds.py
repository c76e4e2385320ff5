"""Refunds: charge.refunded and refund.* events, partial and full, pending, succeeded and failed."""

import pytest

from orders.models import Refund
from testkit.stripe_objects import API_WITHOUT_REFUND_EVENTS, charge_obj, refund_obj
from tests.webhook.support import (
    last_move,
    pay,
    send,
)

pytestmark = pytest.mark.django_db


def test_a_partial_charge_refund_is_recorded_and_the_order_stays_completed(client, order):
    pay(client, order)
    stored = send(client, order, "charge.refunded", charge_obj(order, refunded=1000))

    assert stored.outcome == "applied"
    assert (order.status, order.charge_amount_refunded_cents) == ("completed", 1000)
    assert order.stripe_charge_id == f"ch_{order.number}"
    assert order.payment_method == "Visa •••• 4242"


def test_a_full_charge_refund_refunds_the_order_on_an_api_version_without_refund_events(
    client, order
):
    pay(client, order)
    old = {"api_version": API_WITHOUT_REFUND_EVENTS}
    send(client, order, "charge.refunded", charge_obj(order, refunded=1000), **old)
    charge = charge_obj(order, refunded=order.total_cents)
    stored = send(client, order, "charge.refunded", charge, **old)

    assert (order.status, order.charge_amount_refunded_cents) == ("refunded", order.total_cents)
    assert last_move(order) == ("completed", "refunded", stored.id, "refunded in full")


def test_a_charge_refund_records_the_refunds_it_carries(client, order):
    pay(client, order)
    refunds = {"data": [refund_obj(order, "re_a", 500), refund_obj(order, "re_b", 700, "pending")]}
    send(client, order, "charge.refunded", charge_obj(order, refunded=500, refunds=refunds))

    rows = Refund.objects.filter(order=order).order_by("stripe_refund_id")
    assert [(r.stripe_refund_id, r.amount_cents, r.status) for r in rows] == [
        ("re_a", 500, "succeeded"),
        ("re_b", 700, "pending"),
    ]
    assert order.status == "completed"


def test_a_pending_refund_is_recorded_and_leaves_the_order_completed(client, order, sent):
    pay(client, order)
    sent.clear()
    stored = send(client, order, "refund.created", refund_obj(order, "re_1", 2500, "pending"))

    refund = Refund.objects.get(stripe_refund_id="re_1")
    assert (refund.order, refund.amount_cents, refund.status) == (order, 2500, "pending")
    assert (stored.outcome, order.status) == ("applied", "completed")
    assert sent == ["refund_pending"]  # no money back yet, but on its way: told once


def test_a_refund_that_succeeds_in_full_refunds_the_order(client, order):
    pay(client, order)
    send(client, order, "refund.created", refund_obj(order, "re_1", order.total_cents, "pending"))
    stored = send(
        client, order, "refund.updated", refund_obj(order, "re_1", order.total_cents, "succeeded")
    )

    assert Refund.objects.get(stripe_refund_id="re_1").status == "succeeded"
    assert order.status == "refunded"
    assert last_move(order) == ("completed", "refunded", stored.id, "refunded in full")


def test_partial_refunds_that_add_up_to_the_total_refund_the_order(client, order):
    pay(client, order)
    send(client, order, "refund.created", refund_obj(order, "re_1", 1000))
    assert order.status == "completed"
    send(client, order, "refund.created", refund_obj(order, "re_2", order.total_cents - 1000))
    assert order.status == "refunded"


def test_a_failed_refund_is_recorded_and_the_order_stays_completed(client, order):
    pay(client, order)
    send(client, order, "refund.created", refund_obj(order, "re_1", 2500, "pending"))
    failed = {
        **refund_obj(order, "re_1", 2500, "failed"),
        "failure_reason": "expired_or_canceled_card",
    }
    stored = send(client, order, "refund.failed", failed)

    refund = Refund.objects.get(stripe_refund_id="re_1")
    assert (refund.status, refund.failure_reason) == ("failed", "expired_or_canceled_card")
    assert (stored.outcome, order.status) == ("applied", "completed")


def test_a_late_pending_update_does_not_undo_a_succeeded_refund(client, order):
    pay(client, order)
    send(client, order, "refund.created", refund_obj(order, "re_1", 1000, "succeeded"))
    stored = send(client, order, "refund.updated", refund_obj(order, "re_1", 1000, "pending"))

    assert stored.outcome == "no_change"
    assert Refund.objects.get(stripe_refund_id="re_1").status == "succeeded"
