"""Payments: every handled event type, sessions, delayed payments, declines and expiries."""

import time

import pytest

from orders.stripe_events import HANDLERS
from testkit.stripe_objects import (
    charge_obj,
    fraud_warning_obj,
    intent_failed_obj,
    invoice_obj,
    make_event,
    review_obj,
    session_obj,
)
from tests.factories import make_order
from tests.webhook.support import (
    FAILURE_TYPES,
    Build,
    deliver,
    dispute,
    failure_obj,
    full_refund,
    last_move,
    old_attempt,
    pay,
    send,
    unpaid_session,
)

pytestmark = pytest.mark.django_db


PAID = [("checkout.session.completed", session_obj)]
DISPUTED = [*PAID, ("charge.dispute.created", dispute("needs_response"))]
REFUNDING = [*PAID, ("refund.created", full_refund("pending"))]
EACH_TYPE: dict[str, tuple[list[tuple[str, Build]], Build, str]] = {
    "checkout.session.completed": ([], session_obj, "completed"),
    "checkout.session.async_payment_succeeded": (
        [("checkout.session.completed", unpaid_session)],
        session_obj,
        "completed",
    ),
    "checkout.session.async_payment_failed": (
        [("checkout.session.completed", unpaid_session)],
        unpaid_session,
        "failed",
    ),
    "checkout.session.expired": (
        [],
        lambda o: failure_obj(o, "checkout.session.expired"),
        "failed",
    ),
    "payment_intent.payment_failed": ([], intent_failed_obj, "failed"),
    # On the pinned API version refund.* events tell refunds: the charge's total counts pending
    # ones (test_ledger has the versions where charge.refunded is all there is).
    "charge.refunded": (PAID, lambda o: charge_obj(o, refunded=o.subtotal_cents), "completed"),
    "refund.created": (PAID, full_refund("succeeded"), "refunded"),
    "refund.updated": (REFUNDING, full_refund("succeeded"), "refunded"),
    "refund.failed": (REFUNDING, full_refund("failed"), "completed"),
    "charge.dispute.created": (PAID, dispute("needs_response"), "disputed"),
    "charge.dispute.updated": (DISPUTED, dispute("under_review"), "disputed"),
    "charge.dispute.closed": (DISPUTED, dispute("won"), "completed"),
    "charge.dispute.funds_withdrawn": (DISPUTED, dispute("needs_response"), "disputed"),
    "charge.dispute.funds_reinstated": (
        [*DISPUTED, ("charge.dispute.funds_withdrawn", dispute("needs_response"))],
        dispute("won"),
        "completed",
    ),
    "invoice.finalized": ([("checkout.session.completed", session_obj)], invoice_obj, "completed"),
    "invoice.paid": ([("checkout.session.completed", session_obj)], invoice_obj, "completed"),
    "radar.early_fraud_warning.created": (PAID, fraud_warning_obj, "completed"),
    "radar.early_fraud_warning.updated": (
        [*PAID, ("radar.early_fraud_warning.created", fraud_warning_obj)],
        lambda o: fraud_warning_obj(o, actionable=False),
        "completed",
    ),
    "review.opened": (PAID, review_obj, "completed"),
    "review.closed": (
        [*PAID, ("review.opened", review_obj)],
        lambda o: review_obj(o, closed_reason="approved"),
        "completed",
    ),
}


@pytest.mark.parametrize("event_type", list(HANDLERS))
def test_each_handled_event_type_moves_the_order_as_the_design_says(client, order, event_type):
    assert event_type in EACH_TYPE, f"add a case for {event_type}"
    before, build, expected = EACH_TYPE[event_type]
    for earlier_type, earlier in before:
        send(client, order, earlier_type, earlier(order))

    stored = send(client, order, event_type, build(order))

    assert (stored.outcome, stored.order) == ("applied", order)
    assert order.status == expected


def test_a_paid_session_completes_the_order_with_what_stripe_charged(client, order, sent):
    discounted = session_obj(order, amount_total=1999, total_details={"amount_discount": 501})
    stored = send(client, order, "checkout.session.completed", discounted)

    assert order.status == "completed"
    assert (order.amount_total_cents, order.total_cents) == (1999, 1999)
    assert order.paid_at is not None and order.paid_source == stored.id
    assert order.stripe_payment_intent_id == f"pi_{order.number}"
    assert last_move(order) == ("pending", "completed", stored.id, "payment succeeded")
    assert (stored.type, stored.outcome, stored.order) == (
        "checkout.session.completed",
        "applied",
        order,
    )
    assert stored.payload["data"]["object"]["amount_total"] == 1999
    assert sent == ["order_transitioned", "payment_completed"]


def test_a_paid_session_with_an_expanded_payment_intent_records_the_charge_and_method(
    client, order
):
    intent = {
        "id": f"pi_{order.number}",
        "object": "payment_intent",
        "latest_charge": charge_obj(order),
    }
    send(client, order, "checkout.session.completed", session_obj(order, payment_intent=intent))

    assert order.status == "completed"
    assert order.stripe_payment_intent_id == f"pi_{order.number}"
    assert order.stripe_charge_id == f"ch_{order.number}"
    assert order.payment_method == "Visa •••• 4242"


def test_an_unpaid_completed_session_keeps_the_order_pending_with_an_async_payment_in_flight(
    client, order, sent
):
    stored = send(client, order, "checkout.session.completed", unpaid_session(order))

    assert (order.status, order.async_payment_pending, order.paid_at) == ("pending", True, None)
    assert order.stripe_payment_intent_id == f"pi_{order.number}"
    assert stored.outcome == "applied"
    assert order.transitions.count() == 1
    assert sent == []


def test_a_delayed_payment_that_succeeds_completes_the_order(client, order):
    send(client, order, "checkout.session.completed", unpaid_session(order))
    stored = send(client, order, "checkout.session.async_payment_succeeded", session_obj(order))

    assert (order.status, order.async_payment_pending) == ("completed", False)
    assert last_move(order) == ("pending", "completed", stored.id, "payment succeeded")


def test_a_delayed_payment_that_fails_fails_the_order_with_its_code(client, order, sent):
    send(client, order, "checkout.session.completed", unpaid_session(order))
    stored = send(client, order, "checkout.session.async_payment_failed", unpaid_session(order))

    assert (order.status, order.async_payment_pending) == ("failed", False)
    assert (order.failure_code, order.failure_message) == (
        "async_payment_failed",
        "The delayed payment failed.",
    )
    assert last_move(order) == ("pending", "failed", stored.id, "The delayed payment failed.")
    assert sent == ["order_transitioned", "payment_failed"]


def test_an_expired_session_fails_the_order(client, order):
    expired = session_obj(order, status="expired", payment_status="unpaid")
    stored = send(client, order, "checkout.session.expired", expired)

    assert (order.status, order.failure_code) == ("failed", "expired")
    assert order.failure_message == "The checkout session expired."
    assert order.failure_event_created == stored.created


def test_a_declined_payment_fails_the_order_with_the_decline_code_and_message(client, order):
    stored = send(client, order, "payment_intent.payment_failed", intent_failed_obj(order))

    assert order.status == "failed"
    assert (order.failure_code, order.failure_message) == (
        "card_declined",
        "Your card was declined.",
    )
    # A declined PaymentIntent's id is not kept: anyone's PaymentIntent may name the order in its
    # metadata, and refunds and disputes find orders by the ids kept. The paying session tells it.
    assert order.stripe_payment_intent_id == ""
    assert last_move(order) == ("pending", "failed", stored.id, "Your card was declined.")


def test_a_payment_error_without_a_decline_code_keeps_its_error_code(client, order):
    error = {"code": "expired_card", "message": "Your card has expired."}
    send(
        client,
        order,
        "payment_intent.payment_failed",
        intent_failed_obj(order, last_payment_error=error),
    )
    assert (order.status, order.failure_code, order.failure_message) == (
        "failed",
        "expired_card",
        "Your card has expired.",
    )


def test_the_latest_failure_of_an_attempt_wins_whatever_order_they_arrive_in(client, order):
    now = int(time.time())
    newer = make_event(
        "payment_intent.payment_failed", intent_failed_obj(order, "insufficient_funds"), created=now
    )
    older = make_event("payment_intent.payment_failed", intent_failed_obj(order), created=now - 60)
    deliver(client, newer)
    assert deliver(client, older).outcome == "no_change"

    order.refresh_from_db()
    assert (order.failure_code, order.failure_event_created) == ("insufficient_funds", now)


def test_a_payment_that_succeeds_after_a_failure_completes_the_order(client, order):
    send(client, order, "payment_intent.payment_failed", intent_failed_obj(order))
    stored = pay(client, order)

    assert order.status == "completed"
    assert last_move(order) == ("failed", "completed", stored.id, "payment succeeded")
    assert [t.to_status for t in order.transitions.all()] == ["pending", "failed", "completed"]


@pytest.mark.parametrize("failure_type", FAILURE_TYPES)
def test_a_failure_after_the_order_was_paid_is_ignored(client, order, sent, failure_type):
    pay(client, order)
    sent.clear()
    stored = send(client, order, failure_type, failure_obj(order, failure_type))

    assert (stored.outcome, stored.order) == ("no_change", order)
    assert (order.status, order.failure_code, order.failure_message) == ("completed", "", "")
    assert sent == []


@pytest.mark.parametrize("failure_type", FAILURE_TYPES)
def test_a_failure_from_an_older_attempt_is_ignored(client, order, sent, failure_type):
    order.attempt = 2
    order.save()
    obj = failure_obj(order, failure_type, metadata=old_attempt(order))

    stored = send(client, order, failure_type, obj)

    assert (stored.outcome, stored.order) == ("no_change", order)
    assert (order.status, order.failure_code, order.stripe_payment_intent_id) == ("pending", "", "")
    assert sent == []


def test_a_failure_of_the_current_attempt_fails_the_order_whichever_arrives_first(client):
    first, second = make_order(), make_order()
    for order in (first, second):
        order.attempt = 2
        order.save()

    def failures(order):
        old = intent_failed_obj(order, id="pi_old", metadata=old_attempt(order))
        return [
            ("payment_intent.payment_failed", old),
            ("payment_intent.payment_failed", intent_failed_obj(order, id="pi_new")),
        ]

    current = {}
    for order, steps in ((first, failures(first)), (second, failures(second)[::-1])):
        for event_type, obj in steps:
            stored = send(client, order, event_type, obj)
            if obj["id"] == "pi_new":
                current[order.pk] = stored.id

    assert first.stripe_payment_intent_id == second.stripe_payment_intent_id == ""
    assert first.status == second.status == "failed"
    assert first.failure_source == current[first.pk]  # the old attempt's failure is ignored
    assert second.failure_source == current[second.pk]


@pytest.mark.parametrize("failure_type", FAILURE_TYPES)
def test_a_failure_of_the_current_retried_attempt_fails_the_order(client, order, failure_type):
    order.attempt = 2
    order.save()
    send(client, order, failure_type, failure_obj(order, failure_type))

    assert order.status == "failed"
