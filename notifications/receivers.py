"""Each orders/licenses signal becomes a notification. Receivers only write outbox rows, from
the final facts the signal carries."""

from django.dispatch import receiver

from licenses.signals import activation_limit_reached, stock_low
from orders import signals
from orders.disputes import APPEAL, CLOSED_AFTER_APPEAL, INQUIRY
from orders.models import Status
from orders.transitions import outcome
from shop.money import format_money

from .embeds import activation_limit_embed, order_embed, stock_embed, when
from .events import Event
from .outbox import enqueue


def _notify(event: str, order, extra=(), *, title: str = "") -> None:
    enqueue(event, order_embed(event, order, list(extra), title=title), order=order)


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
    # Back to completed from disputed (or refunded, after an appeal) is told by order.dispute_closed.
    returned = transition.from_status in (Status.DISPUTED, Status.REFUNDED)
    if transition.to_status == Status.COMPLETED and not returned:
        _notify(Event.ORDER_COMPLETED, order)


@receiver(signals.payment_failed, dispatch_uid="notify_payment_failed")
def notify_payment_failed(sender, order, code, message, **kwargs) -> None:
    if code == "expired":  # the buyer left: no payment was refused
        reason = "The buyer left the checkout without paying; it expired. They can pay again."
        _notify(Event.PAYMENT_FAILED, order, [("Reason", reason)], title="Checkout abandoned")
        return
    _notify(Event.PAYMENT_FAILED, order, [("Reason", f"{message} ({code})")])


@receiver(signals.refund_counted, dispatch_uid="notify_order_refunded")
def notify_order_refunded(sender, order, refund, refunded_total, fully_refunded, **kwargs) -> None:
    so_far = f"{format_money(refunded_total, order.currency)} of {format_money(order.total_cents, order.currency)}"
    _notify(
        Event.ORDER_REFUNDED,
        order,
        [
            ("Refund", format_money(refund.amount_cents, refund.currency)),
            ("Refunded", f"{so_far}: {'refunded in full' if fully_refunded else 'partial'}"),
            ("Refund reason", refund.reason),
        ],
    )


@receiver(signals.refund_failed, dispatch_uid="notify_refund_failed")
def notify_refund_failed(sender, order, refund, **kwargs) -> None:
    _notify(
        Event.ORDER_REFUND_FAILED,
        order,
        [
            ("Refund", format_money(refund.amount_cents, refund.currency)),
            (
                "Failure",
                f"{refund.status}: {(refund.failure_reason or 'no reason given').replace('_', ' ')}",
            ),
            (
                "Action",
                "The customer has neither the money nor the license: refund again or settle it on /mgmt.",
            ),
        ],
    )


def _stage(dispute) -> str:
    if dispute.stage in (APPEAL, CLOSED_AFTER_APPEAL):
        return "Appeal"
    return "Inquiry" if dispute.status in INQUIRY else "Chargeback"


@receiver(signals.dispute_changed, dispatch_uid="notify_dispute")
def notify_dispute(sender, order, dispute, change, **kwargs) -> None:
    details = [
        ("Stage", _stage(dispute)),
        ("Dispute reason", dispute.reason.replace("_", " ")),
        ("Amount", format_money(dispute.amount_cents, dispute.currency)),
    ]
    if change == "closed":
        _notify(Event.ORDER_DISPUTE_CLOSED, order, [*details, ("Outcome", outcome(dispute))])
        return
    headline = {"escalated": "Escalated from an inquiry", "appealed": "Reopened by an appeal"}
    _notify(
        Event.ORDER_DISPUTED,
        order,
        [
            *details,
            ("Change", headline.get(change, "")),
            ("Evidence due", when(dispute.evidence_due_by)),
        ],
    )


@receiver(signals.payment_mismatched, dispatch_uid="notify_payment_mismatch")
def notify_payment_mismatch(sender, order, mismatch, **kwargs) -> None:
    _notify(
        Event.ORDER_PAYMENT_MISMATCH,
        order,
        [
            ("Checkout Session", mismatch.stripe_session_id),
            ("Paid", f"{mismatch.paid} ({mismatch.payment_status or 'no status'})"),
            ("Problem", mismatch.problem),
            (
                "Action",
                "The order stays as it was. If the money should not stand, refund it in the "
                "Stripe Dashboard; complete the order by hand only if the payment is really for it.",
            ),
        ],
    )


@receiver(stock_low, dispatch_uid="notify_stock_low")
def notify_stock_low(sender, product, remaining, threshold, **kwargs) -> None:
    enqueue(Event.LICENSE_STOCK_LOW, stock_embed(product, remaining, threshold))


@receiver(activation_limit_reached, dispatch_uid="notify_activation_limit_reached")
def notify_activation_limit_reached(sender, license, activation, **kwargs) -> None:
    embed = activation_limit_embed(license, activation)
    enqueue(Event.LICENSE_ACTIVATION_LIMIT_REACHED, embed, order=license.order)
