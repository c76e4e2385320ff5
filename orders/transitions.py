"""The order state machine: the table of allowed moves and the one function that moves."""

from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from shop import rows

from . import amounts, disputes
from .models import Order, OrderTransition, Status
from .signals import order_transitioned
from .statuses import DisputeStatus

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
    (R, D): "an appeal reopened a lost dispute",
    # An appeal's outcome can arrive before the appeal itself: the lost chargeback was won back.
    (R, C): "a lost dispute won on appeal",
}


class IllegalTransition(Exception):
    pass


def transition_order(
    order: Order, to: str, *, source: str, reason: str = "", also: Sequence[str] = ()
) -> OrderTransition:
    """Move `order` to `to`, or raise IllegalTransition.

    Locks the row, checks the table, writes the audit row and sends `order_transitioned`, all in
    the caller's transaction, so receivers' writes commit or roll back with the move. `also`
    names fields of `order` to write in the same UPDATE as the status (the facts that called for
    the move); a refused move writes none of them.
    """
    with transaction.atomic(savepoint=False):
        current = order.status
        # The caller's copy is usually right (it holds the row lock): then one conditional UPDATE
        # locks, checks and writes at once. Otherwise read the row under lock and check that.
        row = _move(order, current, to, also, source=source, reason=reason)
        if row is None:
            current = (
                Order.objects.select_for_update(no_key=True)
                .values_list("status", flat=True)
                .get(pk=order.pk)
            )
            row = _move(order, current, to, also, source=source, reason=reason)
        if row is not None:
            order.status = to
            order_transitioned.send(sender=Order, order=order, transition=row, source=source)
            return row
    # Raised outside the block: a refused move wrote nothing, and an exception leaving a block
    # without a savepoint would make the caller's whole transaction unusable.
    raise IllegalTransition(f"order {order.number}: {current} → {to} is not allowed")


def _move(
    order: Order, current: str, to: str, also: Sequence[str], *, source: str, reason: str
) -> OrderTransition | None:
    """The move from `current` if the table allows it and the row is still there, with its
    audit row (one statement on PostgreSQL); None if not."""
    if (current, to) not in ALLOWED:
        return None
    fields = {name: getattr(order, name) for name in also}
    if "updated_at" in fields:  # auto_now, which update() does not apply
        fields["updated_at"] = order.updated_at = timezone.now()
    audit = OrderTransition(
        order=order, from_status=current, to_status=to, source=source[:255], reason=reason[:500]
    )
    moved = rows.update_then_insert(
        Order, {"status": to, **fields}, {"pk": order.pk, "status": current}, audit
    )
    return audit if moved else None


def derive_status(order: Order) -> tuple[str, str]:
    """The status the payment facts call for, with the reason to record. Reads only the order
    row: `facts` keeps the refund and dispute summaries on it."""
    if order.disputes_summary == "lost":
        return R, "chargeback lost"
    if amounts.is_fully_refunded(order):
        return R, "refunded in full"
    if order.disputes_summary == "open":
        return D, "dispute opened: " + order.open_dispute_reason
    if order.is_paid:
        return C, "payment succeeded"
    if order.failure_code:
        return F, order.failure_message or order.failure_code
    return P, "awaiting payment"


def sync_status(order: Order, *, source: str, also: Sequence[str] = ()) -> OrderTransition | None:
    """Bring `status` in line with the facts. A move the table forbids (a refunded order whose
    refund later failed) keeps the status: refunded is final, as the table says. The fields
    `also` are written with the move (see transition_order); None means nothing was written."""
    to, reason = derive_status(order)
    if to == order.status or (order.status, to) not in ALLOWED:
        return None
    if order.status in (D, R) and to == C:
        closed = [d for d in order.disputes.all() if not d.is_open]
        reason = "dispute closed: " + ", ".join(outcome(d) for d in closed)
    elif order.status == R and to == D:
        reason = "dispute appealed: " + order.open_dispute_reason
    return transition_order(order, to, source=source, reason=reason, also=also)


def outcome(dispute) -> str:
    """How a closed dispute ended, in words: "won", "lost on appeal", "inquiry closed"…"""
    words = {DisputeStatus.WARNING_CLOSED: "inquiry closed", DisputeStatus.PREVENTED: "prevented"}
    text = words.get(dispute.status, dispute.status)
    return f"{text} on appeal" if dispute.stage == disputes.CLOSED_AFTER_APPEAL else text
