"""What an order's money comes to, in minor units of its currency, computed here only: its
total, what was refunded, what went back or is on its way, and what is left to refund. Pages,
the CSV, the overview, the embeds and the staff commands all read these, so none disagrees.

"Refunded" and "returned" differ on purpose: `refunded` is what the payment facts count (the
status follows it, so a refund counts once it succeeded), `returned` is what staff may no longer
refund (a refund still pending counts, one that failed or was canceled does not).
"""

from typing import TYPE_CHECKING

from django.db.models import F, Sum
from django.db.models.functions import Coalesce

from .statuses import RefundStatus

if TYPE_CHECKING:
    from .models import Order

# The order's total in a query (sorting, the CSV, the overview's sums), as `total()` reads it.
TOTAL = Coalesce(F("amount_total_cents"), F("subtotal_cents"))
# A refund that did not reach the customer after it was asked for.
UNDONE_REFUNDS = {RefundStatus.FAILED, RefundStatus.CANCELED}


def total(order: "Order") -> int:
    """What Stripe charged (promotions and taxes included), else the catalog's subtotal."""
    return (
        order.amount_total_cents if order.amount_total_cents is not None else order.subtotal_cents
    )


def refunded(order: "Order") -> int:
    """Refunded, as the facts count it: Stripe's count for the charge, or our refunds that
    succeeded, whichever is more (an event may tell either first)."""
    return max(order.charge_amount_refunded_cents, order.refunds_succeeded_cents)


def is_fully_refunded(order: "Order") -> bool:
    """Only against what Stripe charged: the catalog price may be less than a taxed total, and
    refunded is final, so it must not be decided early."""
    return bool(order.amount_total_cents) and refunded(order) >= order.amount_total_cents


def returned(order: "Order") -> int:
    """What went back to the customer, or is on its way: Stripe's count for the charge, less the
    refunds that failed or were canceled since, or our own refunds, whichever is more (one
    query)."""
    by_status = dict(
        order.refunds.values_list("status").annotate(total=Sum("amount_cents")).order_by()
    )
    undone = sum(by_status.get(status, 0) for status in UNDONE_REFUNDS)
    ours = sum(amount for status, amount in by_status.items() if status not in UNDONE_REFUNDS)
    return max(order.charge_amount_refunded_cents - undone, ours, 0)


def refundable(order: "Order", *, already: int | None = None) -> int:
    """What staff may still refund: the total less what was `returned` (pass it when known)."""
    return max(total(order) - (returned(order) if already is None else already), 0)
