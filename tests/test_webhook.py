import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.dispatch import Signal
from django.test.utils import CaptureQueriesContext

from orders import signals
from orders.models import Dispute, Order, OrderTransition, Refund, StripeEvent
from orders.webhooks import HANDLERS, sign_payload
from tests.factories import (
    add_item,
    charge_obj,
    dispute_obj,
    intent_failed_obj,
    make_event,
    make_order,
    make_product,
    refund_obj,
    session_obj,
    signed_post,
)

pytestmark = pytest.mark.django_db

URL = "/stripe/webhook/"
FAILURE_TYPES = [
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "payment_intent.payment_failed",
]
# Measured with one item: the event row (one INSERT … ON CONFLICT), the order's lock, the
# deferred-events look-up, one write of its facts, the move (a conditional UPDATE) and its audit
# row, the outcome, and what the receivers add (the order items, licenses and their key email, two
# Discord outbox rows with their destinations). PostgreSQL adds the advisory lock taken when the
# order learns its PaymentIntent. Measure again when a receiver of the `orders` signals changes.
SESSION_COMPLETED_QUERIES = {"sqlite": 17, "postgresql": 18}
# The test's savepoint around the request, the insert that finds the id taken, the stored row.
DUPLICATE_QUERIES = {"sqlite": 4, "postgresql": 4}


@pytest.fixture
def order() -> Order:
    return make_order()


@pytest.fixture
def sent() -> list[str]:
    """The name of every `orders` signal sent, in order."""
    names = {value: name for name, value in vars(signals).items() if isinstance(value, Signal)}
    calls = []

    def record(signal, sender, **kwargs):
        calls.append(names[signal])

    for signal in names:
        signal.connect(record, weak=False, dispatch_uid="test-webhook-sent")
    yield calls
    for signal in names:
        signal.disconnect(dispatch_uid="test-webhook-sent")


def post(client, body: bytes, signature: str | None):
    headers = {} if signature is None else {"HTTP_STRIPE_SIGNATURE": signature}
    return client.post(URL, body, content_type="application/json", **headers)


def v1(body: bytes, timestamp: int, secret: str = "") -> str:
    """The bare `v1` signature Stripe would send for `body` (our own secret unless told)."""
    header = sign_payload(body, secret or django_settings.STRIPE_WEBHOOK_SECRET, timestamp)
    return header.split("v1=")[1]


def body_of(event: Any) -> bytes:
    return json.dumps(event).encode()


def deliver(client, event: dict[str, Any]) -> StripeEvent:
    response = signed_post(client, event)
    assert response.status_code == 200, response.content
    stored = StripeEvent.objects.get(id=event["id"])
    assert response.json() == {"received": True, "outcome": stored.outcome}
    return stored


def send(client, order: Order, event_type: str, obj: dict[str, Any], **fields) -> StripeEvent:
    stored = deliver(client, make_event(event_type, obj, **fields))
    order.refresh_from_db()
    return stored


def pay(client, order: Order) -> StripeEvent:
    return send(client, order, "checkout.session.completed", session_obj(order))


def last_move(order: Order) -> tuple[str, str, str, str]:
    row = OrderTransition.objects.filter(order=order).last()
    return row.from_status, row.to_status, row.source, row.reason


def old_attempt(order: Order) -> dict[str, str]:
    return {"order_id": str(order.public_id), "attempt": str(order.attempt - 1)}


def snapshot(order: Order) -> tuple:
    """Everything an event can change, to compare before and after."""
    order.refresh_from_db()
    return (
        Order.objects.filter(pk=order.pk).values().get(),
        list(OrderTransition.objects.filter(order=order).values()),
        list(Refund.objects.values()),
        list(Dispute.objects.values()),
        StripeEvent.objects.count(),
    )


def refused(response, status: int = 400) -> None:
    assert response.status_code == status, response.content
    assert "error" in response.json()
    assert StripeEvent.objects.count() == 0


# Bad input: refused with 400 (413 for an oversized body), nothing stored, never a 500.


def test_it_rejects_a_missing_signature(client, order):
    refused(
        post(client, body_of(make_event("checkout.session.completed", session_obj(order))), None)
    )


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "t=,v1=",
        "t=yesterday,v1={sig}",
        "v1={sig}",
        "t={t}",
        "t={t},v0={sig}",
        "t={t},v1={sig}0",
        "t={t},v1=not-hex",
        "t={t},v1=é{sig}",
        "t={t},,v1",
    ],
)
def test_it_rejects_a_garbled_signature(client, order, header):
    body = body_of(make_event("checkout.session.completed", session_obj(order)))
    t = int(time.time())
    sig = v1(body, t)
    refused(post(client, body, header.format(t=t, sig=sig)))
    order.refresh_from_db()
    assert order.status == "pending"


def test_it_rejects_an_expired_signature(client, settings, order):
    event = make_event("checkout.session.completed", session_obj(order))
    too_old = int(time.time()) - settings.STRIPE_WEBHOOK_TOLERANCE - 1
    refused(signed_post(client, event, timestamp=too_old))


def test_it_accepts_a_signature_still_within_the_tolerance(client, settings, order):
    event = make_event("checkout.session.completed", session_obj(order))
    recent = int(time.time()) - settings.STRIPE_WEBHOOK_TOLERANCE + 60
    assert signed_post(client, event, timestamp=recent).status_code == 200
    assert StripeEvent.objects.filter(id=event["id"]).exists()


def test_it_rejects_a_signature_made_with_another_secret(client, order):
    event = make_event("checkout.session.completed", session_obj(order))
    refused(signed_post(client, event, secret="whsec_someone_else"))


def test_it_rejects_a_body_altered_after_signing(client, order):
    event = make_event("checkout.session.completed", session_obj(order, amount_total=100))
    t = int(time.time())
    header = f"t={t},v1={v1(body_of(event), t)}"
    event["data"]["object"]["amount_total"] = 1
    refused(post(client, body_of(event), header))
    order.refresh_from_db()
    assert (order.status, order.amount_total_cents) == ("pending", None)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{",
        b'{"id": "evt_1",',
        b"\xff\xfe{}",
        b"\x00",
        b"NaN",
        b"[" * 200_000 + b"]" * 200_000,
    ],
    ids=["text", "brace", "truncated", "bad-utf8", "nul", "nan", "nested-200k-deep"],
)
def test_it_rejects_a_signed_body_that_is_not_json(client, body):
    refused(signed_post(client, body))


def test_it_rejects_an_empty_body_signed_or_not(client):
    refused(signed_post(client, b""))
    refused(post(client, b"", None))


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "evt_1",
        42,
        None,
        {},
        {"id": "evt_1", "type": "checkout.session.completed"},
        {"id": 1, "type": "checkout.session.completed", "data": {"object": {}}},
        {"id": "", "type": "checkout.session.completed", "data": {"object": {}}},
        {"id": "evt_1", "type": None, "data": {"object": {}}},
        {"id": "evt_1", "type": "checkout.session.completed", "data": None},
        {"id": "evt_1", "type": "checkout.session.completed", "data": []},
        {"id": "evt_1", "type": "checkout.session.completed", "data": ["object"]},
        {"id": "evt_1", "type": "checkout.session.completed", "data": "object"},
        {"id": "evt_1", "type": "checkout.session.completed", "data": {}},
        {"id": "evt_1", "type": "checkout.session.completed", "data": {"object": []}},
        {"id": "evt_1", "type": "checkout.session.completed", "data": {"object": "cs_1"}},
    ],
)
def test_it_rejects_signed_json_that_is_not_an_event(client, payload):
    refused(signed_post(client, body_of(payload)))


@pytest.mark.parametrize("created", ["yesterday", "12.5", [1], {"t": 1}, 2**70])
def test_it_rejects_an_event_whose_created_time_is_not_a_timestamp(client, order, created):
    event = make_event("checkout.session.completed", session_obj(order), created=created)
    refused(signed_post(client, event))
    order.refresh_from_db()
    assert order.status == "pending"


def test_it_rejects_an_event_id_or_type_too_long_to_store(client, order):
    long_id = make_event("checkout.session.completed", session_obj(order), id="evt_" + "x" * 300)
    refused(signed_post(client, long_id))
    refused(signed_post(client, make_event("x" * 101, session_obj(order))))


def test_it_refuses_a_five_megabyte_body_with_413_even_when_signed(client, order):
    event = make_event("checkout.session.completed", session_obj(order))
    event["padding"] = "x" * (5 * 1024 * 1024)
    refused(signed_post(client, event), status=413)
    order.refresh_from_db()
    assert order.status == "pending"


@pytest.mark.parametrize("good_first", [False, True])
def test_it_accepts_two_v1_signatures_when_one_matches_during_secret_rotation(
    client, order, good_first
):
    event = make_event("checkout.session.completed", session_obj(order))
    body = body_of(event)
    t = int(time.time())
    good, bad = v1(body, t), v1(body, t, "whsec_previous_secret")
    signatures = [good, bad] if good_first else [bad, good]
    header = f"t={t}," + ",".join(f"v1={s}" for s in signatures)

    assert post(client, body, header).status_code == 200

    assert StripeEvent.objects.get(id=event["id"]).outcome == "applied"
    order.refresh_from_db()
    assert order.status == "completed"


def test_it_rejects_two_v1_signatures_when_neither_matches(client, order):
    body = body_of(make_event("checkout.session.completed", session_obj(order)))
    t = int(time.time())
    old, older = v1(body, t, "whsec_old"), v1(body, t, "whsec_older")
    refused(post(client, body, f"t={t},v1={old},v1={older}"))


def test_it_answers_405_to_anything_but_post(client):
    assert client.get(URL).status_code == 405
    assert StripeEvent.objects.count() == 0


def test_an_event_whose_processing_fails_answers_500_and_is_not_stored_so_stripe_retries(
    client, order, monkeypatch
):
    event = make_event("checkout.session.completed", session_obj(order))

    def broken(*args):
        raise RuntimeError("database hiccup")

    with monkeypatch.context() as patch:
        patch.setitem(HANDLERS, "checkout.session.completed", broken)
        patch.setattr(client, "raise_request_exception", False)
        assert signed_post(client, event).status_code == 500
    assert not StripeEvent.objects.exists()

    assert deliver(client, event).outcome == "applied"
    order.refresh_from_db()
    assert order.status == "completed"


# Every handled type, through the signed endpoint. Each case: events that come first, the
# event under test, and the status it leaves.

Build = Callable[[Order], dict[str, Any]]


def unpaid_session(order: Order, **fields) -> dict[str, Any]:
    return session_obj(order, **{"payment_status": "unpaid", **fields})


def full_refund(status: str) -> Build:
    return lambda order: refund_obj(order, "re_1", order.subtotal_cents, status)


def dispute(status: str) -> Build:
    return lambda order: dispute_obj(order, "dp_1", status)


def failure_obj(order: Order, event_type: str, **fields) -> dict[str, Any]:
    if event_type == "payment_intent.payment_failed":
        return intent_failed_obj(order, **fields)
    status = "expired" if event_type == "checkout.session.expired" else "complete"
    return session_obj(order, **{"status": status, "payment_status": "unpaid", **fields})


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
    "charge.refunded": (PAID, lambda o: charge_obj(o, refunded=o.subtotal_cents), "refunded"),
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
    stored = send(
        client, order, "checkout.session.completed", session_obj(order, amount_total=1999)
    )

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
    assert sent == ["payment_completed", "order_transitioned"]


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
    assert sent == ["payment_failed", "order_transitioned"]


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
    assert order.stripe_payment_intent_id == f"pi_{order.number}"
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


def test_the_current_attempts_payment_intent_is_kept_whichever_failure_arrives_first(client):
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

    for event_type, obj in failures(first):
        send(client, first, event_type, obj)
    for event_type, obj in reversed(failures(second)):
        send(client, second, event_type, obj)

    assert first.stripe_payment_intent_id == second.stripe_payment_intent_id == "pi_new"
    assert first.status == second.status == "failed"


@pytest.mark.parametrize("failure_type", FAILURE_TYPES)
def test_a_failure_of_the_current_retried_attempt_fails_the_order(client, order, failure_type):
    order.attempt = 2
    order.save()
    send(client, order, failure_type, failure_obj(order, failure_type))

    assert order.status == "failed"


def test_a_partial_charge_refund_is_recorded_and_the_order_stays_completed(client, order):
    pay(client, order)
    stored = send(client, order, "charge.refunded", charge_obj(order, refunded=1000))

    assert stored.outcome == "applied"
    assert (order.status, order.charge_amount_refunded_cents) == ("completed", 1000)
    assert order.stripe_charge_id == f"ch_{order.number}"
    assert order.payment_method == "Visa •••• 4242"


def test_a_full_charge_refund_refunds_the_order(client, order):
    pay(client, order)
    send(client, order, "charge.refunded", charge_obj(order, refunded=1000))
    stored = send(client, order, "charge.refunded", charge_obj(order, refunded=order.total_cents))

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
    assert sent == ["refund_changed"]


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
    assert sent == ["dispute_changed", "order_transitioned"]


def test_a_dispute_under_review_keeps_the_order_disputed(client, order):
    pay(client, order)
    send(client, order, "charge.dispute.created", dispute_obj(order, "dp_1"))
    stored = send(
        client, order, "charge.dispute.updated", dispute_obj(order, "dp_1", "under_review")
    )

    assert Dispute.objects.get(stripe_dispute_id="dp_1").status == "under_review"
    assert (stored.outcome, order.status) == ("applied", "disputed")


@pytest.mark.parametrize(
    ("opened", "closed"), [("needs_response", "won"), ("warning_needs_response", "warning_closed")]
)
def test_a_dispute_closed_in_our_favour_completes_the_order_again(client, order, opened, closed):
    pay(client, order)
    send(client, order, "charge.dispute.created", dispute_obj(order, "dp_1", opened))
    stored = send(client, order, "charge.dispute.closed", dispute_obj(order, "dp_1", closed))

    assert Dispute.objects.get(stripe_dispute_id="dp_1").status == closed
    assert order.status == "completed"
    assert last_move(order) == ("disputed", "completed", stored.id, f"dispute closed: {closed}")


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
    early = send(client, order, early_type, build(order))
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


# Accepted but not applied: stored with the reason, answered 200.


def test_an_unhandled_event_type_is_stored_and_answered_200(client, order):
    stored = send(client, order, "customer.created", {"id": "cus_1", "object": "customer"})

    assert (stored.type, stored.outcome, stored.order) == ("customer.created", "unhandled", None)
    assert order.status == "pending"


def test_a_session_for_an_order_we_do_not_have_is_stored_as_unknown_order(client, order):
    obj = session_obj(order, client_reference_id=None)
    obj["metadata"]["order_id"] = str(uuid.uuid4())
    stored = send(client, order, "checkout.session.completed", obj)

    assert (stored.outcome, stored.order) == ("unknown_order", None)
    assert order.status == "pending"


@pytest.mark.parametrize("order_id", ["not-a-uuid", "42", "{order}-x", "ﾟ∀ﾟ", 42, ["x"]])
@pytest.mark.parametrize(
    "event_type", ["checkout.session.completed", "payment_intent.payment_failed"]
)
def test_a_malformed_order_id_is_stored_as_unknown_order(client, order, order_id, event_type):
    build = session_obj if event_type.startswith("checkout") else intent_failed_obj
    obj = build(order, client_reference_id=None)
    value = order_id.format(order=order.public_id) if isinstance(order_id, str) else order_id
    obj["metadata"] = {"order_id": value, "attempt": "1"}

    stored = send(client, order, event_type, obj)

    assert (stored.outcome, stored.order) == ("unknown_order", None)
    assert order.status == "pending"


def test_a_refund_for_a_charge_we_do_not_know_is_stored_as_unknown_order(client):
    stranger = {**refund_obj(make_order(), "re_1", 100), "payment_intent": None, "charge": "ch_x"}
    stored = deliver(client, make_event("refund.created", stranger))
    assert (stored.outcome, stored.order, stored.payment_intent_id) == ("unknown_order", None, "")
    assert not Refund.objects.exists()


@pytest.mark.parametrize(("live_key", "livemode"), [("", True), ("sk_live_123", False)])
def test_an_event_from_the_other_mode_is_stored_as_a_livemode_mismatch(
    client, settings, order, live_key, livemode
):
    settings.STRIPE_SECRET_KEY = live_key
    stored = send(
        client, order, "checkout.session.completed", session_obj(order), livemode=livemode
    )

    assert (stored.outcome, stored.livemode, stored.detail) == (
        "livemode_mismatch",
        livemode,
        f"livemode={livemode}",
    )
    assert (order.status, order.paid_at) == ("pending", None)


# Duplicates: answered 200, stored once, nothing changes, no signal twice.


@pytest.mark.parametrize(
    ("event_type", "build"),
    [
        ("checkout.session.completed", session_obj),
        ("payment_intent.payment_failed", intent_failed_obj),
        ("refund.created", full_refund("succeeded")),
        ("charge.dispute.created", dispute("needs_response")),
        ("customer.created", lambda o: {"id": "cus_1", "object": "customer"}),
    ],
)
def test_a_duplicate_delivery_is_answered_200_stored_once_and_changes_nothing(
    client, order, sent, event_type, build
):
    if event_type.startswith(("refund", "charge")):
        pay(client, order)
    event = make_event(event_type, build(order))
    first = deliver(client, event)
    sent.clear()
    before = snapshot(order)

    again = deliver(client, event)

    assert StripeEvent.objects.filter(id=event["id"]).count() == 1
    assert (again.outcome, again.received_at) == (first.outcome, first.received_at)
    assert snapshot(order) == before
    assert sent == []


def test_a_duplicate_sent_with_a_fresh_signature_later_is_still_a_duplicate(client, order, sent):
    event = make_event("checkout.session.completed", session_obj(order))
    deliver(client, event)
    sent.clear()
    response = signed_post(client, event, timestamp=int(time.time()) + 30)

    assert response.status_code == 200
    assert response.json()["outcome"] == "applied"
    assert StripeEvent.objects.count() == 1
    assert order.transitions.count() == 2
    assert sent == []


# Query counts: fulfilling an order costs the same however many items it has.


def with_items(count: int) -> Order:
    order = make_order()
    for _ in range(count - 1):
        add_item(order, product=make_product(), quantity=2)
    return order


def queries_for(client, event: dict[str, Any]) -> list[str]:
    """The statements one delivery runs, cut to their verb and table, to compare runs."""
    with CaptureQueriesContext(connection) as queries:
        assert signed_post(client, event).status_code == 200
    return [
        re.sub(r'"s\d+_x\d+"', "", " ".join(q["sql"].split()[:3])) for q in queries.captured_queries
    ]


@pytest.mark.parametrize("items", [1, 5])
def test_a_paid_session_for_a_pending_order_takes_a_fixed_number_of_queries(
    client, django_assert_max_num_queries, items
):
    order = with_items(items)
    event = make_event("checkout.session.completed", session_obj(order))

    with django_assert_max_num_queries(SESSION_COMPLETED_QUERIES[connection.vendor]):
        signed_post(client, event)

    order.refresh_from_db()
    assert order.status == "completed"


def test_the_query_count_is_the_same_for_one_item_and_several_and_lower_for_a_duplicate(client):
    one, several = with_items(1), with_items(5)
    assert several.items.count() == 5
    events = [make_event("checkout.session.completed", session_obj(o)) for o in (one, several)]

    for_one, for_several = (queries_for(client, event) for event in events)
    duplicate = queries_for(client, events[1])

    extra = Counter(for_several) - Counter(for_one)
    assert len(for_one) == len(for_several), f"more queries for more items: {dict(extra)}"
    assert len(for_one) == SESSION_COMPLETED_QUERIES[connection.vendor]
    assert len(duplicate) == DUPLICATE_QUERIES[connection.vendor] < len(for_one)


def test_a_duplicate_takes_at_most_a_handful_of_queries(
    client, order, django_assert_max_num_queries
):
    event = make_event("checkout.session.completed", session_obj(order))
    signed_post(client, event)

    with django_assert_max_num_queries(DUPLICATE_QUERIES[connection.vendor]):
        assert signed_post(client, event).status_code == 200


def half_broken_charge(order: Order) -> dict[str, Any]:
    """A charge whose refunded total is fine but whose embedded refund lacks its amount: the
    handler has changed the order's facts when it fails."""
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
    ids=["no-amount", "unknown-status", "fails-halfway"],
)
def test_a_malformed_early_event_changes_nothing_and_never_blocks_the_payment(
    client, order, event_type, build
):
    early = send(client, order, event_type, build(order))
    assert early.outcome == "unknown_order"

    pay(client, order)

    assert (order.status, order.charge_amount_refunded_cents) == ("completed", 0)
    assert not Refund.objects.exists()
    early.refresh_from_db()
    assert (early.outcome, early.order) == ("unknown_order", order)
    assert "could not be applied" in early.detail
