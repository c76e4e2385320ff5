"""Every handled event type and every dispute and refund status, in the exact shape of Stripe's
published objects (testkit/stripe_objects.py), through the signed webhook: the order's status, its
licenses and what Discord is told, as DESIGN.md ("Orders and the state machine") says."""

import logging
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from audit.commands import Refused
from licenses.emails import send_key_emails
from notifications.templatetags.discord import ESCAPE
from orders import commands as order_commands
from orders import facts
from orders.checkout import start_checkout
from orders.gateways.offline import OfflineGateway
from orders.models import Dispute, LicenseKind, Order, StripeEvent
from orders.offline_events import deliver_due_events
from orders.stripe_events import HANDLERS
from orders.updates import update_order
from testkit import stripe_objects as so
from testkit.signing import signed_post
from tests.factories import make_order, make_product

pytestmark = pytest.mark.django_db


@pytest.fixture
def order() -> Order:
    return make_order(product=make_product(name="Photon Editor", price_cents=2500))


def deliver(order: Order, event_type: str, obj: dict[str, Any], **fields) -> StripeEvent:
    event = so.make_event(event_type, obj, created=so.one_second_later(), **fields)
    response = signed_post(Client(), event)
    assert response.status_code == 200, response.content
    order.refresh_from_db()
    return StripeEvent.objects.get(id=event["id"])


def told(order: Order) -> list[str]:
    return list(order.notifications.order_by("id").values_list("event", flat=True))


def fields_of(order: Order, event: str) -> dict[str, str]:
    """The embed's fields as Discord shows them (its markdown escapes undone)."""
    embed = order.notifications.filter(event=event).order_by("id").last().embed
    return {f["name"]: ESCAPE.sub(r"\1", f["value"]) for f in embed["fields"]}


def licenses(order: Order) -> list[tuple[str, str]]:
    return list(order.licenses.order_by("id").values_list("status", "reason"))


def pi(order: Order) -> str:
    return so.ids(order)["payment_intent"]


def pay(order: Order) -> None:
    deliver(order, "checkout.session.completed", so.session_obj(order))


def open_dispute(order: Order, status: str = "needs_response") -> None:
    deliver(
        order,
        "charge.dispute.created",
        so.dispute_obj(order, "dp_1", status, payment_intent=pi(order)),
    )


def pending_refund(order: Order) -> None:
    deliver(order, "refund.created", so.refund_obj(order, "re_1", order.subtotal_cents, "pending"))


def warned(order: Order) -> None:
    deliver(order, "radar.early_fraud_warning.created", so.fraud_warning_obj(order))


def in_review(order: Order) -> None:
    deliver(order, "review.opened", so.review_obj(order))


ACTIVE, SUSPENDED = [("active", "")], [("suspended", "dispute")]
HELD = [("suspended", "review")]
REVOKED, CHARGEBACK = [("revoked", "refund")], [("revoked", "chargeback")]


def full_refund(status: str):
    return lambda o: so.refund_obj(o, "re_1", o.subtotal_cents, status)


def dispute(status: str):
    return lambda o: so.dispute_obj(o, "dp_1", status, payment_intent=pi(o))


def unpaid_session(o: Order, **fields) -> dict[str, Any]:
    return so.session_obj(o, payment_status="unpaid", **fields)


# event type: (what comes first, the event's object, status, licenses, what it tells)
EACH_TYPE = {
    "checkout.session.completed": (
        [], so.session_obj, "completed", ACTIVE, ["order.completed", "payment.completed"]
    ),
    "checkout.session.async_payment_succeeded": (
        [lambda o: deliver(o, "checkout.session.completed", unpaid_session(o))],
        so.session_obj, "completed", ACTIVE, ["order.completed", "payment.completed"],
    ),
    "checkout.session.async_payment_failed": (
        [lambda o: deliver(o, "checkout.session.completed", unpaid_session(o))],
        unpaid_session, "failed", [], ["payment.failed"],
    ),
    "checkout.session.expired": (
        [], lambda o: unpaid_session(o, status="expired"), "failed", [], ["payment.failed"]
    ),
    "payment_intent.payment_failed": (
        [], lambda o: so.intent_failed_obj(o, "insufficient_funds"), "failed", [], ["payment.failed"]
    ),
    # The pinned version tells refunds by refund.* events; the charge's total counts pending ones.
    "charge.refunded": (
        [pay], lambda o: so.charge_obj(o, refunded=o.subtotal_cents), "completed", ACTIVE, []
    ),
    "refund.created": ([pay], full_refund("succeeded"), "refunded", REVOKED, ["order.refunded"]),
    "refund.updated": (
        [pay, pending_refund], full_refund("succeeded"), "refunded", REVOKED, ["order.refunded"]
    ),
    "refund.failed": (
        [pay, pending_refund], full_refund("failed"), "completed", ACTIVE, ["order.refund_failed"]
    ),
    "charge.dispute.created": (
        [pay], dispute("needs_response"), "disputed", SUSPENDED, ["order.disputed"]
    ),
    "charge.dispute.updated": ([pay, open_dispute], dispute("under_review"), "disputed", SUSPENDED, []),
    "charge.dispute.closed": (
        [pay, open_dispute], dispute("won"), "completed", ACTIVE, ["order.dispute_closed"]
    ),
    "charge.dispute.funds_withdrawn": (
        [pay, open_dispute], dispute("needs_response"), "disputed", SUSPENDED, []
    ),
    "charge.dispute.funds_reinstated": (
        [pay, open_dispute], dispute("won"), "completed", ACTIVE, ["order.dispute_closed"]
    ),
    "invoice.finalized": ([pay], so.invoice_obj, "completed", ACTIVE, []),
    "invoice.paid": ([pay], so.invoice_obj, "completed", ACTIVE, []),
    # Radar: a warning flags the order and keeps the keys; a review holds them till approved.
    "radar.early_fraud_warning.created": (
        [pay], so.fraud_warning_obj, "completed", ACTIVE, ["order.fraud_warning"]
    ),
    "radar.early_fraud_warning.updated": (
        [pay, warned], lambda o: so.fraud_warning_obj(o, actionable=False), "completed", ACTIVE, []
    ),
    "review.opened": ([pay], so.review_obj, "completed", HELD, ["order.fraud_warning"]),
    "review.closed": (
        [pay, in_review], lambda o: so.review_obj(o, closed_reason="approved"), "completed",
        ACTIVE, [],
    ),
}  # fmt: skip


@pytest.mark.parametrize("event_type", list(HANDLERS))
def test_each_handled_event_type_in_stripes_shape_ends_as_the_design_says(order, event_type):
    assert event_type in EACH_TYPE, f"add a case for {event_type}"
    before, build, status, expected_licenses, expected_told = EACH_TYPE[event_type]
    for step in before:
        step(order)
    already = len(told(order))

    stored = deliver(order, event_type, build(order))

    assert (stored.outcome, stored.order, stored.api_version) == (
        "applied",
        order,
        "2026-10-28.endive",
    )
    assert order.status == status
    assert licenses(order) == expected_licenses
    assert told(order)[already:] == expected_told


# A dispute first seen in each of its statuses, after the payment.
DISPUTE_FIRST_SEEN = {
    "warning_needs_response": ("disputed", SUSPENDED, ["order.disputed"], "Inquiry"),
    "warning_under_review": ("disputed", SUSPENDED, ["order.disputed"], "Inquiry"),
    "warning_closed": ("completed", ACTIVE, ["order.disputed", "order.dispute_closed"], "Inquiry"),
    "needs_response": ("disputed", SUSPENDED, ["order.disputed"], "Chargeback"),
    "under_review": ("disputed", SUSPENDED, ["order.disputed"], "Chargeback"),
    "won": ("completed", ACTIVE, ["order.disputed", "order.dispute_closed"], "Chargeback"),
    "lost": ("refunded", CHARGEBACK, ["order.disputed", "order.dispute_closed"], "Chargeback"),
    "prevented": ("completed", ACTIVE, ["order.disputed", "order.dispute_closed"], "Chargeback"),
    "appeal_needs_response": ("disputed", SUSPENDED, ["order.disputed"], "Appeal"),
    "appeal_under_review": ("disputed", SUSPENDED, ["order.disputed"], "Appeal"),
}


@pytest.mark.parametrize("status", so.DISPUTE_STATUSES)
def test_a_dispute_first_seen_in_each_status_ends_as_the_design_says(order, status):
    assert sorted(so.DISPUTE_STATUSES) == sorted(Dispute.Status.values)  # the SDK's, all known
    assert status in DISPUTE_FIRST_SEEN, f"add a case for {status}"
    expected, expected_licenses, expected_told, stage = DISPUTE_FIRST_SEEN[status]
    pay(order)

    deliver(order, "charge.dispute.updated", dispute(status)(order))

    assert order.status == expected
    assert licenses(order) == expected_licenses
    assert told(order)[3:] == expected_told
    assert fields_of(order, "order.disputed")["Stage"] == stage


# A full refund first seen in each of its statuses, after the payment.
REFUND_FIRST_SEEN = {
    "pending": ("completed", ACTIVE, ["order.refund_pending"], False),
    "requires_action": ("completed", ACTIVE, ["order.refund_pending"], False),
    "succeeded": ("refunded", REVOKED, ["order.refunded"], False),
    "failed": ("completed", ACTIVE, ["order.refund_failed"], True),
    "canceled": ("completed", ACTIVE, ["order.refund_failed"], True),
}


@pytest.mark.parametrize("status", so.REFUND_STATUSES)
def test_a_refund_first_seen_in_each_status_ends_as_the_design_says(order, status):
    assert status in REFUND_FIRST_SEEN, f"add a case for {status}"
    expected, expected_licenses, expected_told, flagged = REFUND_FIRST_SEEN[status]
    pay(order)

    deliver(order, "refund.updated", full_refund(status)(order))

    assert order.status == expected
    assert licenses(order) == expected_licenses
    assert told(order)[3:] == expected_told
    assert (order.refund_failed_at is not None) == flagged


# Appeals, escalations, and refunds that fail after they counted.


def test_a_lost_chargeback_won_on_appeal_completes_the_order_and_gives_the_licenses_back(order):
    pay(order)
    open_dispute(order)
    deliver(order, "charge.dispute.closed", dispute("lost")(order))
    assert (order.status, licenses(order)) == ("refunded", CHARGEBACK)

    deliver(order, "charge.dispute.updated", dispute("appeal_needs_response")(order))
    assert order.status == "disputed"
    deliver(order, "charge.dispute.updated", dispute("appeal_under_review")(order))
    deliver(order, "charge.dispute.closed", dispute("won")(order))

    assert order.status == "completed"
    assert licenses(order) == ACTIVE
    assert told(order)[3:] == [
        "order.disputed",
        "order.dispute_closed",
        "order.disputed",
        "order.dispute_closed",
    ]
    assert fields_of(order, "order.dispute_closed")["Outcome"] == "won on appeal"
    assert fields_of(order, "order.disputed")["Change"] == "Reopened by an appeal"
    moves = list(order.transitions.values_list("to_status", "reason"))
    assert moves[-2:] == [
        ("disputed", "dispute appealed: fraudulent"),
        ("completed", "dispute closed: won on appeal"),
    ]


def test_a_won_chargeback_lost_on_appeal_refunds_the_order_and_revokes_the_licenses(order):
    pay(order)
    open_dispute(order)
    deliver(order, "charge.dispute.closed", dispute("won")(order))
    assert (order.status, licenses(order)) == ("completed", ACTIVE)

    deliver(order, "charge.dispute.updated", dispute("appeal_needs_response")(order))
    assert (order.status, licenses(order)) == ("disputed", SUSPENDED)
    deliver(order, "charge.dispute.closed", dispute("lost")(order))

    assert order.status == "refunded"
    assert licenses(order) == CHARGEBACK
    assert fields_of(order, "order.dispute_closed")["Outcome"] == "lost on appeal"


def test_a_chargeback_lost_before_the_payment_event_and_won_on_appeal_gets_keys(order):
    open_dispute(order)
    deliver(order, "charge.dispute.closed", dispute("lost")(order))
    pay(order)
    assert (order.status, licenses(order)) == ("refunded", CHARGEBACK)
    assert order.licenses.get().key == ""  # never had one: the money went back first

    deliver(order, "charge.dispute.updated", dispute("appeal_needs_response")(order))
    deliver(order, "charge.dispute.closed", dispute("won")(order))

    assert (order.status, licenses(order)) == ("completed", ACTIVE)
    key = order.licenses.get().key
    assert key
    send_key_emails()
    (keys,) = [m for m in mail.outbox if m.subject.startswith("Your license keys")]
    assert key in keys.body


def test_an_inquiry_escalated_to_a_chargeback_moves_forward_and_takes_the_new_deadline(order):
    pay(order)
    deliver(order, "charge.dispute.created", dispute("warning_needs_response")(order))
    deliver(order, "charge.dispute.updated", dispute("warning_under_review")(order))
    first_deadline = Dispute.objects.get().evidence_due_by
    escalated = so.dispute_obj(
        order, "dp_1", "needs_response", payment_intent=pi(order), due_in_days=21
    )

    deliver(order, "charge.dispute.updated", escalated)

    row = Dispute.objects.get()
    assert row.status == "needs_response"
    assert row.evidence_due_by > first_deadline
    assert told(order)[3:] == ["order.disputed", "order.disputed"]
    assert fields_of(order, "order.disputed")["Change"] == "Escalated from an inquiry"
    assert fields_of(order, "order.disputed")["Stage"] == "Chargeback"
    # A late inquiry event never moves it back.
    deliver(order, "charge.dispute.updated", dispute("warning_under_review")(order))
    assert Dispute.objects.get().status == "needs_response"


def test_a_pending_refund_the_charge_counts_that_then_fails_never_revoked_the_keys(order):
    """A Dashboard refund starts pending and charge.refunded counts it in `amount_refunded`:
    the order is not refunded until the refund succeeds, so its failure leaves the keys."""
    pay(order)
    pending_refund(order)
    deliver(order, "charge.refunded", so.charge_obj(order, refunded=order.subtotal_cents))
    assert (order.status, licenses(order)) == ("completed", ACTIVE)
    assert told(order)[-1] == "order.refund_pending"

    failed = so.refund_obj(
        order, "re_1", order.subtotal_cents, "failed", failure_reason="lost_or_stolen_card"
    )
    deliver(order, "refund.failed", failed)

    assert (order.status, licenses(order)) == ("completed", ACTIVE)
    assert order.refund_failed_at is not None
    assert told(order)[-1] == "order.refund_failed"
    failure = fields_of(order, "order.refund_failed")
    assert failure["Refund"] == "$25.00"
    assert failure["Failure"] == "failed: lost or stolen card"


def test_a_refund_updated_from_succeeded_to_failed_is_flagged_once(order):
    pay(order)
    deliver(order, "refund.created", full_refund("succeeded")(order))
    deliver(order, "refund.updated", full_refund("failed")(order))
    deliver(order, "refund.updated", full_refund("failed")(order))  # told again by Stripe

    assert order.status == "refunded"
    assert order.refund_failed_at is not None
    assert told(order)[3:] == ["order.refunded", "order.refund_failed"]


def test_staff_refund_again_after_a_failed_refund_and_the_flag_clears(order, staff):
    start_checkout(order)
    order.refresh_from_db()
    OfflineGateway().pay(order.stripe_session_id)  # the test gateway holds the charge to refund
    deliver_due_events()
    order.refresh_from_db()
    deliver(
        order,
        "refund.updated",
        so.refund_obj(
            order, "re_gone", 1000, "failed", payment_intent=order.stripe_payment_intent_id
        ),
    )
    assert order.refund_failed_at is not None

    order_commands.refund.run(order, by=staff, amount_cents=1000, reason="paid back again")

    order.refresh_from_db()
    assert order.refund_failed_at is None
    assert order.status == "completed"  # $10 of $25: a partial refund


def test_a_failed_refund_can_be_settled_by_staff_and_only_once(order, staff):
    pay(order)
    deliver(order, "refund.updated", full_refund("failed")(order))

    order_commands.settle.run(order, by=staff)

    order.refresh_from_db()
    assert order.refund_failed_at is None
    with pytest.raises(Refused, match="No failed refund"):
        order_commands.settle.run(order, by=staff)


def test_two_partial_refunds_adding_up_to_the_total_tell_partial_then_in_full(order):
    pay(order)
    deliver(order, "refund.created", so.refund_obj(order, "re_1", 1000))
    first = fields_of(order, "order.refunded")
    deliver(order, "refund.created", so.refund_obj(order, "re_2", 1500))
    second = fields_of(order, "order.refunded")

    assert (first["Refund"], first["Refunded"]) == ("$10.00", "$10.00 of $25.00: partial")
    assert (second["Refund"], second["Refunded"]) == (
        "$15.00",
        "$25.00 of $25.00: refunded in full",
    )
    assert order.status == "refunded"


# Finding the order through the charge.


def test_a_dispute_naming_only_a_charge_waits_until_the_order_learns_that_charge(order):
    pay(order)  # the webhook's session names its PaymentIntent, never the charge
    waiting = deliver(
        order,
        "charge.dispute.created",
        so.dispute_obj(order, "dp_1", "needs_response", payment_intent=None),
    )
    assert waiting.outcome == "unknown_order"
    assert (waiting.payment_intent_id, waiting.charge_id) == ("", f"ch_{order.number}")

    # The success page fetches the session with its PaymentIntent and latest charge expanded.
    session = so.session_obj(
        order, payment_intent={"id": pi(order), "latest_charge": so.charge_obj(order)}
    )
    locked = Order.objects.select_for_update().get(pk=order.pk)
    update_order(
        locked,
        lambda changes: facts.record_session(locked, session, changes, source="success page"),
        source="success page",
    )

    order.refresh_from_db()
    waiting.refresh_from_db()
    assert order.stripe_charge_id == f"ch_{order.number}"
    assert (waiting.outcome, waiting.order) == ("applied", order)
    assert order.status == "disputed"


def test_a_dispute_naming_only_a_charge_the_order_knows_applies_at_once(order):
    pay(order)
    deliver(order, "charge.refunded", so.charge_obj(order, refunded=0))
    stored = deliver(
        order,
        "charge.dispute.created",
        so.dispute_obj(order, "dp_1", "needs_response", payment_intent=None),
    )
    assert (stored.outcome, order.status) == ("applied", "disputed")


def test_a_refund_naming_only_a_charge_teaches_nothing_wrong_and_applies(order):
    pay(order)
    deliver(order, "charge.refunded", so.charge_obj(order, refunded=0))
    stored = deliver(
        order, "refund.created", so.refund_obj(order, "re_1", 500, payment_intent=None)
    )
    assert (stored.outcome, order.refunds_succeeded_cents) == ("applied", 500)


# API versions and currencies.


def test_an_event_of_an_older_api_version_is_processed_and_its_version_kept(order, caplog):
    with caplog.at_level(logging.WARNING, logger="orders.webhooks"):
        stored = deliver(
            order,
            "checkout.session.completed",
            so.session_obj(order),
            api_version="2024-06-20",
        )
    assert (stored.outcome, stored.api_version) == ("applied", "2024-06-20")
    assert order.status == "completed"
    assert "api_version 2024-06-20" in caplog.text


def test_a_yen_order_is_shown_and_bounded_in_whole_yen(client, staff):
    order = make_order(
        product=make_product(price_cents=1999, currency="jpy", license_kind=LicenseKind.NONE)
    )
    deliver(order, "checkout.session.completed", so.session_obj(order))

    page = client.get(f"/orders/{order.public_id}/").content.decode()
    assert "¥1,999" in page and "¥19.99" not in page
    assert fields_of(order, "order.completed")["Total"] == "¥1,999"
    with pytest.raises(Refused, match="between ¥1 and ¥1,999"):
        order_commands.refund.run(order, by=staff, amount_cents=2000)
