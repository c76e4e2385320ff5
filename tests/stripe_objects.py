"""Stripe objects and events in exactly the shape Stripe publishes them, with our ids in.

Each builder starts from Stripe's own example of the object (tests/stripe_fixtures.json, taken from
stripe/openapi's fixtures3.json; see its `_source`) so every field Stripe's example carries is
there, then sets what the shop reads: ids, amounts, currency, status, metadata. The statuses are
the SDK's types for the pinned API version (stripe-python 16.1.0, API 2026-10-28.endive).
"""

import copy
import itertools
import json
import time
import typing
from pathlib import Path
from typing import Any

import stripe
from django.conf import settings

from orders.models import Order

FIXTURES = json.loads(Path(__file__).with_name("stripe_fixtures.json").read_text())


def _literal(annotation) -> list[str]:
    """The values of the Literal in an SDK field's type (Union[Literal[...], str])."""
    [literal] = [a for a in typing.get_args(annotation) if typing.get_origin(a) is typing.Literal]
    return list(typing.get_args(literal))


# The SDK's types for the pinned version; Refund.status is a plain str there, its values listed in
# the field's documentation.
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


def _example(kind: str, ours: dict[str, Any], fields: dict[str, Any] | None = None) -> dict:
    """Stripe's example of `kind`, with `ours` set, then what the test asks for."""
    return {**copy.deepcopy(FIXTURES[kind]), **ours, **(fields or {})}


def ids(order: Order) -> dict[str, str]:
    return {
        "session": order.stripe_session_id or f"cs_test_{order.number}",
        "payment_intent": f"pi_{order.number}",
        "charge": f"ch_{order.number}",
    }


def checkout_session(order: Order, **fields: Any) -> dict[str, Any]:
    """A Checkout Session as `checkout.session.completed` carries it: paid, its PaymentIntent as
    an id (webhooks never expand)."""
    total = order.subtotal_cents
    return _example(
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
            "metadata": {"order_id": str(order.public_id), "attempt": str(order.attempt)},
            "mode": "payment",
            "payment_intent": ids(order)["payment_intent"],
            "payment_status": "paid",
            "status": "complete",
            "url": None,
        },
        fields,
    )


def payment_intent_failed(order: Order, decline_code: str = "insufficient_funds") -> dict[str, Any]:
    return _example(
        "payment_intent",
        {
            "id": ids(order)["payment_intent"],
            "amount": order.subtotal_cents,
            "currency": order.currency,
            "metadata": {"order_id": str(order.public_id), "attempt": str(order.attempt)},
            "last_payment_error": {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": decline_code,
                "doc_url": "https://stripe.com/docs/error-codes/card-declined",
                "message": "Your card has insufficient funds.",
                "param": None,
            },
            "status": "requires_payment_method",
        },
    )


def charge(order: Order, *, amount_refunded: int = 0, **fields: Any) -> dict[str, Any]:
    total = order.subtotal_cents
    return _example(
        "charge",
        {
            "id": ids(order)["charge"],
            "amount": total,
            "amount_captured": total,
            "amount_refunded": amount_refunded,
            "captured": True,
            "currency": order.currency,
            "payment_intent": ids(order)["payment_intent"],
            "refunded": amount_refunded >= total,
            "status": "succeeded",
        },
        fields,
    )


def refund(
    order: Order, refund_id: str, amount: int, status: str = "succeeded", **fields: Any
) -> dict[str, Any]:
    obj = _example(
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


def dispute(
    order: Order, dispute_id: str, status: str, *, due_in_days: int = 7, **fields: Any
) -> dict[str, Any]:
    """As Stripe's example: `payment_intent` null, only the charge (pass payment_intent= to name it)."""
    obj = _example(
        "dispute",
        {
            "id": dispute_id,
            "amount": order.subtotal_cents,
            "charge": ids(order)["charge"],
            "currency": order.currency,
            "reason": "fraudulent",
            "status": status,
        },
        fields,
    )
    obj["evidence_details"]["due_by"] = int(time.time()) + due_in_days * 86400
    return obj


# Stripe stamps events with the second the change happened; a dispute's close, its appeal and the
# appeal's outcome are days apart. One second between the events a test sends keeps that order.
_clock = itertools.count(int(time.time()))


def event(event_type: str, obj: dict[str, Any], *, created: int | None = None, **fields: Any):
    stamp = next(_clock) if created is None else created
    return _example(
        "event",
        {
            "id": f"evt_{obj['id']}_{event_type.replace('.', '_')}_{stamp}_{time.perf_counter_ns()}",
            "api_version": settings.STRIPE_API_VERSION,
            "created": stamp,
            "data": {"object": obj},
            "type": event_type,
        },
        fields,
    )
