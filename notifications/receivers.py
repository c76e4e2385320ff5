"""Each orders/licenses signal becomes a notification. Receivers only write outbox rows."""

from django.dispatch import receiver

from licenses.signals import stock_low
from orders import signals
from orders.models import Status
from orders.money import format_money as money

from .embeds import order_embed, stock_embed, when
from .events import Event
from .outbox import enqueue


def _notify(event: str, order, extra=()) -> None:
    enqueue(event, order_embed(event, order, list(extra)), order=order)


@receiver(signals.order_placed, dispatch_uid="notify_order_pending")
def notify_order_pending(sender, order, **kwargs) -> None:
    _notify(
        Event.ORDER_PENDING, order, [("Attempt", str(order.attempt) if order.attempt > 1 else "")]
    )


@receiver(signals.checkout_started, dispatch_uid="notify_checkout_started")
def notify_checkout_started(sender, order, session_id, **kwargs) -> None:
    _notify(Event.CHECKOUT_STARTED, order)


@receiver(signals.payment_completed, dispatch_uid="notify_payment_completed")
def notify_payment_completed(sender, order, **kwargs) -> None:
    _notify(Event.PAYMENT_COMPLETED, order)


@receiver(signals.order_transitioned, dispatch_uid="notify_order_completed")
def notify_order_completed(sender, order, transition, **kwargs) -> None:
    # disputed → completed is told by order.dispute_closed.
    if transition.to_status == Status.COMPLETED and transition.from_status != Status.DISPUTED:
        _notify(Event.ORDER_COMPLETED, order)


@receiver(signals.payment_failed, dispatch_uid="notify_payment_failed")
def notify_payment_failed(sender, order, code, message, **kwargs) -> None:
    _notify(Event.PAYMENT_FAILED, order, [("Reason", f"{message} ({code})")])


@receiver(signals.refund_changed, dispatch_uid="notify_order_refunded")
def notify_order_refunded(sender, order, refund, newly_succeeded=False, **kwargs) -> None:
    if not newly_succeeded:
        return
    amount = money(refund.amount_cents, refund.currency)
    kind = "full" if refund.amount_cents >= order.total_cents else "partial"
    _notify(
        Event.ORDER_REFUNDED,
        order,
        [("Refund", f"{amount} ({kind})"), ("Refund reason", refund.reason)],
    )


@receiver(signals.dispute_changed, dispatch_uid="notify_dispute")
def notify_dispute(sender, order, dispute, created, **kwargs) -> None:
    details = [
        ("Dispute reason", dispute.reason.replace("_", " ")),
        ("Amount", money(dispute.amount_cents, dispute.currency)),
    ]
    if created:  # a dispute first seen closed was opened all the same
        _notify(
            Event.ORDER_DISPUTED, order, [*details, ("Evidence due", when(dispute.evidence_due_by))]
        )
    if not dispute.is_open:
        _notify(
            Event.ORDER_DISPUTE_CLOSED,
            order,
            [*details, ("Outcome", dispute.status.replace("_", " "))],
        )


@receiver(stock_low, dispatch_uid="notify_stock_low")
def notify_stock_low(sender, product, remaining, threshold, **kwargs) -> None:
    enqueue(Event.LICENSE_STOCK_LOW, stock_embed(product, remaining, threshold))
