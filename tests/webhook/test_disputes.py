"""Disputes: opened, reviewed, closed won or lost, funds withdrawn and reinstated, never moving back."""

import pytest

from orders.models import Dispute
from testkit.stripe_objects import dispute_obj
from tests.webhook.support import (
    last_move,
    pay,
    send,
)

pytestmark = pytest.mark.django_db


def test_a_dispute_disputes_the_order(client, order, sent):
    pay(client, order)
    sent.clear()
    stored = send(client, order, "charge.dispute.created", dispute_obj(order, "dp_1"))

    row = Dispute.objects.get(stripe_dispute_id="dp_1")
    assert (row.order, row.status, row.reason) == (order, "needs_response", "fraudulent")
    assert row.evidence_due_by is not None
    assert order.status == "disputed"
    assert order.stripe_charge_id == f"ch_{order.number}"
    assert last_move(order) == ("completed", "disputed", stored.id, "dispute opened: fraudulent")
    assert sent == ["order_transitioned", "dispute_changed"]


def test_a_dispute_under_review_keeps_the_order_disputed(client, order):
    pay(client, order)
    send(client, order, "charge.dispute.created", dispute_obj(order, "dp_1"))
    stored = send(
        client, order, "charge.dispute.updated", dispute_obj(order, "dp_1", "under_review")
    )

    assert Dispute.objects.get(stripe_dispute_id="dp_1").status == "under_review"
    assert (stored.outcome, order.status) == ("applied", "disputed")


@pytest.mark.parametrize(
    ("opened", "closed", "words"),
    [
        ("needs_response", "won", "won"),
        ("warning_needs_response", "warning_closed", "inquiry closed"),
        ("needs_response", "prevented", "prevented"),
    ],
)
def test_a_dispute_closed_in_our_favour_completes_the_order_again(
    client, order, opened, closed, words
):
    pay(client, order)
    send(client, order, "charge.dispute.created", dispute_obj(order, "dp_1", opened))
    stored = send(client, order, "charge.dispute.closed", dispute_obj(order, "dp_1", closed))

    assert Dispute.objects.get(stripe_dispute_id="dp_1").status == closed
    assert order.status == "completed"
    assert last_move(order) == ("disputed", "completed", stored.id, f"dispute closed: {words}")


def test_a_lost_dispute_refunds_the_order_as_a_lost_chargeback(client, order):
    pay(client, order)
    send(client, order, "charge.dispute.created", dispute_obj(order, "dp_1"))
    stored = send(client, order, "charge.dispute.closed", dispute_obj(order, "dp_1", "lost"))

    assert Dispute.objects.get(stripe_dispute_id="dp_1").status == "lost"
    assert order.status == "refunded"
    assert last_move(order) == ("disputed", "refunded", stored.id, "chargeback lost")


def test_funds_withdrawn_and_reinstated_are_recorded_on_the_dispute(client, order):
    pay(client, order)
    send(client, order, "charge.dispute.created", dispute_obj(order, "dp_1"))
    withdrawn = send(client, order, "charge.dispute.funds_withdrawn", dispute_obj(order, "dp_1"))
    row = Dispute.objects.get(stripe_dispute_id="dp_1")
    assert (withdrawn.outcome, row.funds_withdrawn, row.funds_reinstated) == (
        "applied",
        True,
        False,
    )

    send(client, order, "charge.dispute.closed", dispute_obj(order, "dp_1", "won"))
    reinstated = send(
        client, order, "charge.dispute.funds_reinstated", dispute_obj(order, "dp_1", "won")
    )
    row.refresh_from_db()
    assert (reinstated.outcome, row.funds_withdrawn, row.funds_reinstated) == (
        "applied",
        True,
        True,
    )
    assert order.status == "completed"


@pytest.mark.parametrize(
    "late_status", ["needs_response", "under_review", "warning_needs_response"]
)
def test_a_closed_dispute_never_moves_back_to_open(client, order, sent, late_status):
    pay(client, order)
    send(client, order, "charge.dispute.created", dispute_obj(order, "dp_1"))
    send(client, order, "charge.dispute.closed", dispute_obj(order, "dp_1", "won"))
    sent.clear()

    stored = send(client, order, "charge.dispute.updated", dispute_obj(order, "dp_1", late_status))

    assert Dispute.objects.get(stripe_dispute_id="dp_1").status == "won"
    assert (stored.outcome, order.status) == ("no_change", "completed")
    assert sent == []


def test_a_dispute_under_review_does_not_fall_back_to_needs_response(client, order):
    pay(client, order)
    send(client, order, "charge.dispute.created", dispute_obj(order, "dp_1", "under_review"))
    send(client, order, "charge.dispute.updated", dispute_obj(order, "dp_1", "needs_response"))
    assert Dispute.objects.get(stripe_dispute_id="dp_1").status == "under_review"
