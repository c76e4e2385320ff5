"""What a handled event's object must look like before any handler reads it.

A signed body is Stripe's, but a field of the wrong type (or an amount no column can hold) would
fail halfway through the merge: a 500, and Stripe retrying the same body for days. Checking the
fields the handlers read first turns that into a clear 400 with nothing stored.
"""

from collections.abc import Callable
from typing import Any

from .statuses import DisputeStatus, RefundStatus

Check = Callable[[Any], bool]
MAX_AMOUNT = 2**63 - 1  # PositiveBigIntegerField: IDR allows 12 digits, beyond 32 bits
# Stripe's statuses, as the models' choices list them.
REFUND_STATUSES = set(RefundStatus.values)
DISPUTE_STATUSES = set(DisputeStatus.values)


class MalformedEvent(ValueError):
    pass


def text(limit: int) -> Check:
    return lambda value: isinstance(value, str) and len(value) <= limit


def optional(check: Check) -> Check:
    return lambda value: value is None or check(value)


def one_of(values: set[str]) -> Check:
    return lambda value: isinstance(value, str) and value in values


def amount(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_AMOUNT


def signed_amount(value: Any) -> bool:
    return type(value) is int and abs(value) <= MAX_AMOUNT


def timestamp(value: Any) -> bool:
    return type(value) is int and 0 <= value < 2**40


def mapping(value: Any) -> bool:
    return isinstance(value, dict)


def metadata(value: Any) -> bool:
    return value is None or isinstance(value, dict)  # its values are read through str()


STRIPE_ID = text(255)
CURRENCY = optional(text(3))


def reference(shape: dict[str, Check]) -> Check:
    """An id, or the object expanded (checked as `shape`), or nothing."""
    return lambda value: value is None or STRIPE_ID(value) or _fits(value, shape) is None


CHARGE = {
    "id": STRIPE_ID,
    "amount": optional(amount),
    "amount_refunded": optional(amount),
    "currency": CURRENCY,
    "payment_method_details": optional(mapping),
}
INTENT = {"id": STRIPE_ID, "latest_charge": reference(CHARGE), "metadata": metadata}
REFUND = {
    "id": STRIPE_ID,
    "amount": amount,
    "currency": CURRENCY,
    "status": one_of(REFUND_STATUSES),
    "failure_reason": optional(text(100)),
    "reason": optional(text(50)),
    "metadata": metadata,
    "charge": reference(CHARGE),
    "payment_intent": reference(INTENT),
}
BALANCE_TRANSACTION = {
    "amount": optional(signed_amount),
    "fee": optional(signed_amount),
    "currency": CURRENCY,
}
SHAPES: dict[str, dict[str, Check]] = {
    "checkout.session": {
        "id": STRIPE_ID,
        "metadata": metadata,
        "client_reference_id": optional(text(255)),
        "payment_status": optional(text(30)),
        "status": optional(text(30)),
        "amount_total": optional(amount),
        "amount_subtotal": optional(amount),
        "currency": CURRENCY,
        "payment_intent": reference(INTENT),
        "invoice": reference({"id": STRIPE_ID}),
        # The discount and tax recorded with the payment (facts.discount_and_tax).
        "total_details": optional(
            lambda details: (
                _fits(
                    details,
                    {"amount_discount": optional(amount), "amount_tax": optional(amount)},
                    set(),
                )
                is None
            )
        ),
        # Adaptive Pricing before API 2025-03-31: the shop's currency and amounts.
        "currency_conversion": optional(
            lambda conversion: (
                _fits(
                    conversion,
                    {
                        "amount_subtotal": optional(amount),
                        "amount_total": optional(amount),
                        "source_currency": CURRENCY,
                    },
                    set(),
                )
                is None
            )
        ),
    },
    "payment_intent": {
        "id": STRIPE_ID,
        "metadata": metadata,
        "last_payment_error": optional(
            lambda error: (
                _fits(
                    error,
                    {
                        "code": optional(text(100)),
                        "decline_code": optional(text(100)),
                        "message": optional(text(5000)),
                    },
                )
                is None
            )
        ),
    },
    "charge": {
        **CHARGE,
        "payment_intent": reference(INTENT),
        "refunds": optional(
            lambda refunds: (
                isinstance(refunds, dict)
                and isinstance(refunds.get("data") or [], list)
                and all(
                    _fits(r, REFUND, REQUIRED["refund"]) is None for r in refunds.get("data") or []
                )
            )
        ),
    },
    "refund": REFUND,
    "invoice": {
        "id": STRIPE_ID,
        "metadata": metadata,
        "hosted_invoice_url": optional(text(2000)),
        "invoice_pdf": optional(text(2000)),
    },
    "dispute": {
        "id": STRIPE_ID,
        "amount": amount,
        "currency": CURRENCY,
        "status": one_of(DISPUTE_STATUSES),
        "reason": optional(text(100)),
        "evidence_details": optional(
            lambda details: isinstance(details, dict) and optional(timestamp)(details.get("due_by"))
        ),
        "charge": reference(CHARGE),
        "payment_intent": reference(INTENT),
        # Its withdrawal and reinstatement, with Stripe's dispute fee (facts._record_dispute_fee).
        "balance_transactions": optional(
            lambda transactions: (
                isinstance(transactions, list)
                and all(_fits(txn, BALANCE_TRANSACTION, set()) is None for txn in transactions)
            )
        ),
    },
    "radar.early_fraud_warning": {
        "id": STRIPE_ID,
        "actionable": optional(lambda value: isinstance(value, bool)),
        "fraud_type": optional(text(40)),
        "charge": reference(CHARGE),
        "payment_intent": reference(INTENT),
    },
    "review": {
        "id": STRIPE_ID,
        "open": optional(lambda value: isinstance(value, bool)),
        "opened_reason": optional(text(40)),
        "closed_reason": optional(text(40)),
        "charge": reference(CHARGE),
        "payment_intent": reference(INTENT),
    },
}
# The object each handled event type carries.
KINDS = {
    "checkout.session.": "checkout.session",
    "payment_intent.": "payment_intent",
    "charge.dispute.": "dispute",
    "charge.refunded": "charge",
    "refund.": "refund",
    "invoice.": "invoice",
    "radar.early_fraud_warning.": "radar.early_fraud_warning",
    "review.": "review",
}
# What the handlers index directly; every other field may be absent (they read it with .get).
REQUIRED = {"refund": {"id", "amount", "status"}, "dispute": {"id", "amount", "status"}}


def _fits(obj: Any, shape: dict[str, Check], required: set[str] = frozenset({"id"})) -> str | None:
    """The first field of `obj` that is missing or does not fit `shape`, or None."""
    if not isinstance(obj, dict):
        return "(not an object)"
    for name, check in shape.items():
        if (name in obj and not check(obj[name])) or (name not in obj and name in required):
            return name
    return None


def check_object(event_type: str, obj: dict[str, Any]) -> None:
    """Raise MalformedEvent when a handled event's object cannot be what Stripe sends."""
    kind = next((k for prefix, k in KINDS.items() if event_type.startswith(prefix)), None)
    if kind is None:
        return
    if obj.get("object") != kind:
        raise MalformedEvent(f"a {event_type} event carries a {kind}, not {obj.get('object')!r}")
    wrong = _fits(obj, SHAPES[kind], REQUIRED.get(kind, {"id"}))
    if wrong:
        raise MalformedEvent(f"the {kind}'s {wrong} is not what Stripe sends")
