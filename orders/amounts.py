"""What an order's money comes to, in minor units of its currency, computed here only: its
total, what was refunded, what went back or is on its way, and what is left to refund. Pages,
the CSV, the overview, the embeds and the staff commands all read these, so none disagrees.

"Refunded" and "returned" differ on purpose: `refunded` is what the payment facts count (the
status follows it, so a refund counts once it succeeded), `returned` is what staff may no longer
refund (a refund still pending counts, one that failed or was canceled does not).

`ledger` puts them together with what chargebacks took back and the dispute fees: the order
page, /account, the overview and the embeds read it, so "net" means one thing everywhere.
"""

from dataclasses import dataclass
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
# On its way: asked for, not yet succeeded (nor failed).
PENDING_REFUNDS = {RefundStatus.PENDING, RefundStatus.REQUIRES_ACTION}


def total(order: "Order") -> int:
    """What Stripe charged (promotions and taxes included), else the catalog's subtotal."""
    return (
        order.amount_total_cents if order.amount_total_cents is not None else order.subtotal_cents
    )


def refunded(order: "Order") -> int:
    """Refunded, as the facts count it: the refunds that succeeded, whatever event told them (a
    charge.refunded without refund objects records one for the difference, facts.record_charge).
    Not the charge's `amount_refunded`: Stripe counts a pending refund there, which may yet fail."""
    return order.refunds_succeeded_cents


def is_fully_refunded(order: "Order") -> bool:
    """Only against what Stripe charged: the catalog price may be less than a taxed total, and
    refunded is final, so it must not be decided early."""
    return bool(order.amount_total_cents) and refunded(order) >= order.amount_total_cents


def _by_status(order: "Order") -> dict[str, int]:
    return dict(order.refunds.values_list("status").annotate(total=Sum("amount_cents")).order_by())


def _returned(order: "Order", by_status: dict[str, int]) -> int:
    undone = sum(by_status.get(status, 0) for status in UNDONE_REFUNDS)
    ours = sum(amount for status, amount in by_status.items() if status not in UNDONE_REFUNDS)
    return max(order.charge_amount_refunded_cents - undone, ours, 0)


def returned(order: "Order") -> int:
    """What went back to the customer, or is on its way: Stripe's count for the charge, less the
    refunds that failed or were canceled since, or our own refunds, whichever is more (one
    query)."""
    return _returned(order, _by_status(order))


def refunds_blocked(order: "Order") -> bool:
    """A chargeback holds the money (open, appealed or lost): Stripe refuses a refund while it
    is open, and once lost the money is already back with the customer."""
    return order.chargebacks_cents > 0


def refundable(order: "Order", *, already: int | None = None) -> int:
    """What staff may still refund: the total less what was `returned` (pass it when known);
    nothing while a chargeback holds the money."""
    if refunds_blocked(order):
        return 0
    return max(total(order) - (returned(order) if already is None else already), 0)


@dataclass(frozen=True)
class Ledger:
    """An order's money in minor units of its currency."""

    currency: str
    charged: int  # what the customer paid (0 until paid)
    refunded: int  # refunds that succeeded
    refund_pending: int  # refunds on their way
    chargebacks: int  # held back by chargebacks (open, appealed or lost)
    dispute_fees: int  # Stripe's dispute fees, in the order's currency
    left_to_refund: int

    @property
    def net(self) -> int:
        """What the shop keeps: may be below zero (a chargeback after a refund, and its fee)."""
        return self.charged - self.refunded - self.chargebacks - self.dispute_fees


def net(order: "Order") -> int:
    """What the shop keeps of the order, `ledger(order).net` (read from the order alone)."""
    charged = total(order) if order.paid_at is not None else 0
    return charged - refunded(order) - order.chargebacks_cents - order.dispute_fees_cents


def ledger(order: "Order", *, by_status: dict[str, int] | None = None) -> Ledger:
    """The order's ledger (one query: its refunds' totals by status, unless `by_status` gives
    them, as the CSV does for a chunk of orders at once)."""
    by_status = _by_status(order) if by_status is None else by_status
    paid = order.paid_at is not None
    return Ledger(
        currency=order.currency,
        charged=total(order) if paid else 0,
        refunded=refunded(order),
        refund_pending=sum(by_status.get(status, 0) for status in PENDING_REFUNDS),
        chargebacks=order.chargebacks_cents,
        dispute_fees=order.dispute_fees_cents,
        left_to_refund=refundable(order, already=_returned(order, by_status)) if paid else 0,
    )
