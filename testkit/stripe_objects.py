"""Stripe objects and events in the shape Stripe publishes them, with our ids in: the one set of
builders the tests, the benchmarks and the fake Stripe share.

Each object starts from Stripe's own example of it (stripe_fixtures.json, taken from
stripe/openapi's fixtures3.json; see its `_source`), so every field Stripe's example carries is
there; then the builder sets what the shop reads: ids, amounts, currency, status, metadata. The
statuses are the SDK's types for the pinned API version (stripe-python 16.1.0, API
2026-10-28.endive).

The order-based builders take anything with an order's `number`, `public_id`, `attempt`,
`subtotal_cents`, `currency`, `email` and `stripe_session_id` (an Order, or a benchmark's record
of one). An order's PaymentIntent is `pi_<number>` and its charge `ch_<number>`, so a later event
names what an earlier one taught the order.
"""

import copy
import itertools
import json
import time
import typing
import uuid
from pathlib import Path
from typing import Any, Protocol

import stripe
from django.conf import settings

FIXTURES = json.loads(Path(__file__).with_name("stripe_fixtures.json").read_text())


def _literal(annotation) -> list[str]:
    """The values of the Literal in an SDK field's type (Union[Literal[...], str])."""
    [literal] = [a for a in typing.get_args(annotation) if typing.get_origin(a) is typing.Literal]
    return list(typing.get_args(literal))


# The SDK's types for the pinned version; Refund.status is a plain str there, its values listed in
# the field's documentation. Stripe's word, to check the shop's choices against.
DISPUTE_STATUSES = _literal(stripe.Dispute.__annotations__["status"])
REFUND_STATUSES = ["pending", "requires_action", "succeeded", "failed", "canceled"]
REFUND_FAILURE_REASONS = [
    "lost_or_stolen_card",
    "expired_or_canceled_card",
    "charge_for_pending_refund_disputed",
    "insufficient_funds",
    "declined",
    "merchant_request",
    "unknown",
]
CARD = {"brand": "visa", "last4": "4242"}  # what the shop shows of a card: "Visa •••• 4242"


class OrderLike(Protocol):
    number: str
    public_id: uuid.UUID
    attempt: int
    subtotal_cents: int
    currency: str
    email: str
    stripe_session_id: str


def example(kind: str, ours: dict[str, Any], fields: dict[str, Any] | None = None) -> dict:
    """Stripe's example of `kind`, with `ours` set, then what the caller asks for."""
    return {**copy.deepcopy(FIXTURES[kind]), **ours, **(fields or {})}


def ids(order: OrderLike) -> dict[str, str]:
    return {
        "session": order.stripe_session_id or f"cs_test_{order.number}",
        "payment_intent": f"pi_{order.number}",
        "charge": f"ch_{order.number}",
    }


def _metadata(order: OrderLike) -> dict[str, str]:
    return {"order_id": str(order.public_id), "attempt": str(order.attempt)}


def session_obj(order: OrderLike, **fields: Any) -> dict[str, Any]:
    """A Checkout Session as `checkout.session.completed` carries it: complete and paid, its
    PaymentIntent as an id (webhooks never expand)."""
    total = order.subtotal_cents
    return example(
        "checkout.session",
        {
            "id": ids(order)["session"],
            "amount_subtotal": total,
            "amount_total": total,
            # Stripe's example is an Adaptive Pricing session with random amounts; the shop reads
            # both, so they say what a plain session says.
            "currency_conversion": None,
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "currency": order.currency,
            "client_reference_id": str(order.public_id),
            "customer_email": order.email,
            "metadata": _metadata(order),
            "mode": "payment",
            "payment_intent": ids(order)["payment_intent"],
            "payment_status": "paid",
            "status": "complete",
            "url": None,
        },
        fields,
    )


def intent_failed_obj(
    order: OrderLike, code: str = "card_declined", **fields: Any
) -> dict[str, Any]:
    """A PaymentIntent whose card was declined (`code` is the decline code)."""
    return example(
        "payment_intent",
        {
            "id": ids(order)["payment_intent"],
            "amount": order.subtotal_cents,
            "currency": order.currency,
            "metadata": _metadata(order),
            "last_payment_error": {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": code,
                "doc_url": "https://stripe.com/docs/error-codes/card-declined",
                "message": "Your card was declined.",
                "param": None,
            },
            "latest_charge": None,
            "status": "requires_payment_method",
        },
        fields,
    )


def charge_obj(order: OrderLike, refunded: int = 0, **fields: Any) -> dict[str, Any]:
    """The order's charge, paid by a Visa card, with `refunded` of it refunded (the refunds
    themselves not listed: `refunds=` lists them)."""
    total = order.subtotal_cents
    charge_id = ids(order)["charge"]
    return example(
        "charge",
        {
            "id": charge_id,
            "amount": total,
            "amount_captured": total,
            "amount_refunded": refunded,
            "captured": True,
            "currency": order.currency,
            "payment_intent": ids(order)["payment_intent"],
            "payment_method_details": {"type": "card", "card": dict(CARD)},
            "receipt_email": order.email,
            "refunded": refunded >= total,
            "refunds": {
                "object": "list",
                "data": [],
                "has_more": False,
                "url": f"/v1/charges/{charge_id}/refunds",
            },
            "status": "succeeded",
        },
        fields,
    )


def refund_obj(
    order: OrderLike, refund_id: str, amount: int, status: str = "succeeded", **fields: Any
) -> dict[str, Any]:
    """A refund of the order's charge; a failed one says why, as Stripe's do."""
    obj = example(
        "refund",
        {
            "id": refund_id,
            "amount": amount,
            "charge": ids(order)["charge"],
            "currency": order.currency,
            # Stripe's example refunds a bare charge (no PaymentIntent); ours come from Checkout.
            "payment_intent": ids(order)["payment_intent"],
            "reason": "requested_by_customer",
            "status": status,
        },
        fields,
    )
    if status == "failed":
        obj.setdefault("failure_reason", "expired_or_canceled_card")
    return obj


def dispute_obj(
    order: OrderLike,
    dispute_id: str,
    status: str = "needs_response",
    *,
    due_in_days: int = 7,
    **fields: Any,
) -> dict[str, Any]:
    """A dispute of the order's charge, naming its PaymentIntent too, as disputes of Checkout
    payments do (`payment_intent=None` for one that names only the charge, as Stripe's example
    does); its evidence is due in `due_in_days`."""
    due_by = int(time.time()) + due_in_days * 86400
    return example(
        "dispute",
        {
            "id": dispute_id,
            "amount": order.subtotal_cents,
            "charge": ids(order)["charge"],
            "payment_intent": ids(order)["payment_intent"],
            "currency": order.currency,
            "evidence_details": {**FIXTURES["dispute"]["evidence_details"], "due_by": due_by},
            "reason": "fraudulent",
            "status": status,
        },
        fields,
    )


def fraud_warning_obj(
    order: OrderLike, warning_id: str = "", *, actionable: bool = True, **fields: Any
) -> dict[str, Any]:
    """A Radar early fraud warning on the order's charge (Stripe's example names only the
    charge; the SDK's type has the PaymentIntent too, which Checkout payments carry)."""
    return example(
        "radar.early_fraud_warning",
        {
            "id": warning_id or f"issfr_{order.number}",
            "actionable": actionable,
            "charge": ids(order)["charge"],
            "payment_intent": ids(order)["payment_intent"],
            "fraud_type": "made_with_stolen_card",
            "created": int(time.time()),
        },
        fields,
    )


def review_obj(
    order: OrderLike, review_id: str = "", *, closed_reason: str | None = None, **fields: Any
) -> dict[str, Any]:
    """A Radar review of the order's payment: open, or closed with `closed_reason`."""
    return example(
        "review",
        {
            "id": review_id or f"prv_{order.number}",
            "charge": ids(order)["charge"],
            "payment_intent": ids(order)["payment_intent"],
            "open": closed_reason is None,
            "opened_reason": "rule",
            "closed_reason": closed_reason,
            "reason": closed_reason or "rule",
        },
        fields,
    )


# An API version that sends no refund.* events for charge refunds and no `refunds` list on the
# charge (2022-11-15 up to 2024-10-28): charge.refunded's `amount_refunded` is all it tells.
API_WITHOUT_REFUND_EVENTS = "2024-09-30.acacia"


def invoice_obj(order: OrderLike, invoice_id: str = "", **fields: Any) -> dict[str, Any]:
    """The paid invoice Stripe issues for a Checkout Session with `invoice_creation` (it carries
    `invoice_data`'s metadata: the order), finalized, with its hosted page and PDF."""
    invoice_id = invoice_id or f"in_{order.number}"
    return example(
        "invoice",
        {
            "id": invoice_id,
            "status": "paid",
            "currency": order.currency,
            "total": order.subtotal_cents,
            "amount_paid": order.subtotal_cents,
            "metadata": _metadata(order),
            "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_test/{invoice_id}",
            "invoice_pdf": f"https://pay.stripe.com/invoice/acct_test/{invoice_id}/pdf",
        },
        fields,
    )


def make_event(event_type: str, obj: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The event Stripe sends for `obj`, stamped now (`created=` to say when)."""
    return example(
        "event",
        {
            "id": f"evt_{uuid.uuid4().hex[:24]}",
            "api_version": settings.STRIPE_API_VERSION,
            "created": int(time.time()),
            "data": {"object": obj},
            "livemode": False,
            "type": event_type,
        },
        fields,
    )


# Stripe stamps events with the second the change happened; a dispute's close, its appeal and the
# appeal's outcome are days apart. One second between the events a test sends keeps that order.
_seconds = itertools.count(int(time.time()))


def one_second_later() -> int:
    """A `created` one second after the last one this gave (the first: now)."""
    return next(_seconds)


def refunded_in_full(order: OrderLike) -> dict[str, Any]:
    """The event that refunds the whole order on the pinned API version: its refund's own."""
    refund = refund_obj(order, f"re_{order.number}_full", order.subtotal_cents)
    return make_event("refund.created", refund)
