"""The order state machine: the table of allowed moves and the one function that moves."""

from django.db import transaction
from django.db.models import Sum

from .models import Order, OrderTransition, Refund, Status
from .signals import order_transitioned

P, C, F, R, D = Status.PENDING, Status.COMPLETED, Status.FAILED, Status.REFUNDED, Status.DISPUTED

ALLOWED: dict[tuple[str, str], str] = {
    (P, C): "payment succeeded",
    (P, F): "payment attempt failed or session expired",
    (F, C): "a later attempt succeeded",
    (F, P): "staff retry with a new Checkout Session",
    (C, R): "refunded in full",
    (C, D): "dispute opened",
    (D, C): "dispute closed in our favour",
    (D, R): "dispute lost",
    (P, R): "refund arrived before the payment event",
    (F, R): "refund arrived before the payment event",
    (P, D): "dispute arrived before the payment event",
    (F, D): "dispute arrived before the payment event",
}


class IllegalTransition(Exception):
    pass


def transition_order(order: Order, to: str, *, source: str, reason: str = "") -> OrderTransition:
    """Move `order` to `to`, or raise IllegalTransition.

    Locks the row, checks the table, writes the audit row and sends `order_transitioned`, all in
    the caller's transaction, so receivers' writes commit or roll back with the move.
    """
    with transaction.atomic(savepoint=False):
        current = (
            Order.objects.select_for_update().values_list("status", flat=True).get(pk=order.pk)
        )
        if (current, to) in ALLOWED:
            Order.objects.filter(pk=order.pk).update(status=to)
            order.status = to
            row = OrderTransition.objects.create(
                order=order,
                from_status=current,
                to_status=to,
                source=source[:255],
                reason=reason[:500],
            )
            order_transitioned.send(sender=Order, order=order, transition=row, source=source)
            return row
    # Raised outside the block: a refused move wrote nothing, and an exception leaving a block
    # without a savepoint would make the caller's whole transaction unusable.
    raise IllegalTransition(f"order {order.number}: {current} → {to} is not allowed")


def refunded_amount(order: Order) -> int:
    succeeded = order.refunds.filter(status=Refund.State.SUCCEEDED).aggregate(s=Sum("amount_cents"))
    return max(order.charge_amount_refunded_cents, succeeded["s"] or 0)


def derive_status(order: Order) -> tuple[str, str]:
    """The status the payment facts call for, with the reason to record."""
    disputes = list(order.disputes.all())
    if any(d.status == "lost" for d in disputes):
        return R, "chargeback lost"
    if order.total_cents and refunded_amount(order) >= order.total_cents:
        return R, "refunded in full"
    if any(d.is_open for d in disputes):
        return D, "dispute opened: " + next(d.reason for d in disputes if d.is_open)
    if order.is_paid:
        return C, "payment succeeded"
    if order.failure_code:
        return F, order.failure_message or order.failure_code
    return P, "awaiting payment"


def sync_status(order: Order, *, source: str) -> OrderTransition | None:
    """Bring `status` in line with the facts. A move the table forbids (a refunded order whose
    refund later failed) keeps the status: refunded is final, as the table says."""
    to, reason = derive_status(order)
    if to == order.status or (order.status, to) not in ALLOWED:
        return None
    if order.status == D and to == C:
        reason = "dispute closed: " + ", ".join(d.status for d in order.disputes.all())
    return transition_order(order, to, source=source, reason=reason)
