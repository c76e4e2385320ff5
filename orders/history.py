"""An order's story in a buyer's words, from its status changes, refunds and failures: one helper
for every page the buyer reads it on (the receipt page and /account).

Words come from the move (to and from status) and its reason; a reason these rules do not know
still reads as "<Status>: <reason>", so new reasons written by `orders` need no change here.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models.fields.json import KT

from orders.models import Order, OrderTransition, Refund, Status, StripeEvent
from shop.money import format_money

# Stripe's decline codes a buyer can act on. The rest read "declined by your bank"; Stripe asks
# shops to report fraud-related codes (stolen_card, fraudulent, …) that way too.
DECLINES = {
    "insufficient_funds": "insufficient funds",
    "expired_card": "the card has expired",
    "incorrect_cvc": "wrong security code (CVC)",
    "invalid_cvc": "wrong security code (CVC)",
    "incorrect_number": "wrong card number",
    "invalid_number": "wrong card number",
    "incorrect_zip": "wrong postal code",
    "incorrect_pin": "wrong PIN",
    "invalid_pin": "wrong PIN",
    "invalid_expiry_month": "wrong expiry date",
    "invalid_expiry_year": "wrong expiry date",
    "card_velocity_exceeded": "the card's limit was reached",
    "withdrawal_count_limit_exceeded": "the card's limit was reached",
    "card_not_supported": "the card does not support this purchase",
    "currency_not_supported": "the card does not support this currency",
    "authentication_required": "your bank asked for authentication",
    "processing_error": "a processing error, please try again",
    "try_again_later": "a processing error, please try again",
    "reenter_transaction": "a processing error, please try again",
    "issuer_not_available": "your bank did not answer, please try again",
    "duplicate_transaction": "it looked like a duplicate payment",
    "testmode_decline": "a test card was used",
}
FAILURES = {
    "expired": "Checkout expired before payment",
    "async_payment_failed": "Bank payment failed",
    "payment_failed": "Payment failed",
}
FAILURE_EVENTS = {
    "checkout.session.expired": "expired",
    "checkout.session.async_payment_failed": "async_payment_failed",
}


@dataclass(frozen=True)
class Entry:
    at: datetime
    words: str
    status: str = ""  # the status the order moved to; "" for a refund that moved none


def failure_words(code: str, message: str = "") -> str:
    if code in FAILURES:
        return FAILURES[code]
    if code in DECLINES:
        return f"Payment declined: {DECLINES[code]}"
    if code:
        return "Payment declined by your bank"
    return f"Payment failed: {message.rstrip('.')}" if message else "Payment failed"


def failure_codes(order: Order, transitions: list[OrderTransition]) -> dict[str, str]:
    """The failure code behind each move to failed, by the move's source (a Stripe event id):
    one query, whatever the number of failures."""
    sources = [t.source for t in transitions if t.to_status == Status.FAILED]
    codes = {order.failure_source: order.failure_code} if order.failure_code else {}
    events = [s for s in sources if s.startswith("evt_") and s not in codes]
    if events:
        error = "payload__data__object__last_payment_error__"
        rows = StripeEvent.objects.filter(id__in=events).values_list(
            "id", "type", KT(error + "decline_code"), KT(error + "code")
        )
        for event_id, kind, decline, code in rows:
            codes[event_id] = FAILURE_EVENTS.get(kind) or decline or code or "payment_failed"
    return codes


def _words(text: str) -> str:
    return text.replace("_", " ").strip()


def _after_colon(reason: str, prefix: str) -> str:
    return _words(reason.split(":", 1)[1]) if reason.startswith(prefix + ":") else ""


def transition_words(row: OrderTransition, *, codes: dict[str, str]) -> str:
    to, came_from, reason = row.to_status, row.from_status, row.reason
    if to == Status.PENDING and not came_from:
        return "Order placed"
    if to == Status.PENDING and came_from == Status.FAILED:
        if row.source.startswith("customer:"):
            return "You started a new payment"
        return "The shop sent you a new payment link"
    if to == Status.COMPLETED and came_from == Status.DISPUTED:
        return "Dispute closed: the payment stands"
    if to == Status.COMPLETED:
        return (
            "Payment recorded by the shop" if row.source.startswith("staff") else "Payment received"
        )
    if to == Status.FAILED:
        if row.source == "checkout":
            return f"Payment could not start: {reason.rstrip('.')}" if reason else "Payment failed"
        return failure_words(codes.get(row.source, ""), reason)
    if to == Status.REFUNDED and "chargeback" in reason:
        return "Your bank reversed the payment (chargeback)"
    if to == Status.REFUNDED and reason == "refunded in full":
        return "Refunded in full"
    if to == Status.DISPUTED and reason.startswith("dispute opened"):
        why = _after_colon(reason, "dispute opened")
        return "Payment disputed with your bank" + (f": {why}" if why else "")
    label = Status(to).label if to in Status.values else _words(to).capitalize()
    return f"{label}: {_words(reason)}" if reason else label


def refund_entries(refunds: list[Refund], *, currency: str) -> list[Entry]:
    entries = []
    for refund in refunds:
        amount = format_money(refund.amount_cents, refund.currency or currency)
        why = f": {_words(refund.reason)}" if refund.reason else ""
        if refund.succeeded_once:
            entries.append(Entry(refund.created_at, f"Refunded {amount}{why}"))
        elif refund.status in (Refund.State.PENDING, Refund.State.REQUIRES_ACTION):
            entries.append(Entry(refund.created_at, f"Refund of {amount} on its way{why}"))
        if refund.succeeded_once and refund.status == Refund.State.FAILED:
            # Stripe could not pay it out (e.g. the card expired): the shop has to act.
            words = (
                f"The refund of {amount} could not reach your account; the shop will contact you"
            )
            entries.append(Entry(refund.updated_at, words))
    return entries


def order_history(
    order: Order, *, transitions: list[OrderTransition], refunds: list[Refund]
) -> list[Entry]:
    """Oldest first: status changes and refunds (a partial refund changes no status)."""
    codes = failure_codes(order, transitions)
    entries = [
        Entry(row.created_at, transition_words(row, codes=codes), row.to_status)
        for row in transitions
    ]
    entries += refund_entries(refunds, currency=order.currency)
    return sorted(entries, key=lambda entry: entry.at)
