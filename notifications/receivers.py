"""Each orders/licenses signal becomes a notification. Receivers only write outbox rows, from
the final facts the signal carries."""

from django.conf import settings
from django.dispatch import receiver

from licenses.signals import activation_limit_reached, stock_low
from orders import amounts, signals
from orders.disputes import APPEAL, CLOSED_AFTER_APPEAL, INQUIRY
from orders.models import Status
from orders.transitions import outcome
from shop.money import format_money, format_signed

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


def _refund_fields(refund) -> list[tuple[str, str]]:
    seats = len(refund.seats)
    return [
        ("Refund", format_money(refund.amount_cents, refund.currency)),
        ("Refund reason", refund.reason),
        ("Stripe reason", refund.stripe_reason.replace("_", " ")),
        (
            "Licenses revoked",
            f"{seats} license{'s' if seats > 1 else ''} with this refund" if seats else "",
        ),
        ("Told by", "charge.refunded only (no refund object)" if refund.reported_by_charge else ""),
    ]


@receiver(signals.refund_counted, dispatch_uid="notify_order_refunded")
def notify_order_refunded(sender, order, refund, refunded_total, fully_refunded, **kwargs) -> None:
    so_far = f"{format_money(refunded_total, order.currency)} of {format_money(order.total_cents, order.currency)}"
    fields = _refund_fields(refund)
    fields.insert(
        1, ("Refunded", f"{so_far}: {'refunded in full' if fully_refunded else 'partial'}")
    )
    fields.insert(2, _net(order))
    _notify(Event.ORDER_REFUNDED, order, fields)


def _net(order) -> tuple[str, str]:
    """The ledger's net: what the shop keeps (below zero after a chargeback and its fee)."""
    return ("Net", format_signed(amounts.net(order), order.currency) if order.is_paid else "")


@receiver(signals.refund_seats, dispatch_uid="notify_refund_seats")
def notify_refund_seats(sender, order, refund, counted, **kwargs) -> None:
    """The refund's own embed named the licenses when they were known as it counted; else
    (Stripe's event counted it before the shop recorded the staff's choice) they are told now."""
    if not counted:
        _notify(Event.ORDER_REFUNDED, order, _refund_fields(refund), title="Licenses revoked")


@receiver(signals.refund_pending, dispatch_uid="notify_refund_pending")
def notify_refund_pending(sender, order, refund, **kwargs) -> None:
    waiting = "The money is on its way back; licenses stay as they are until it arrives."
    _notify(Event.ORDER_REFUND_PENDING, order, [*_refund_fields(refund), ("Status", waiting)])


def refund_failed_action(order) -> str:
    """What staff can really do about a refund that did not reach the customer."""
    if order.chargebacks_cents:
        return (
            "A chargeback holds this payment: Stripe refuses refunds while it is open, and a lost "
            "one already gave the money back. Answer the dispute in the Stripe Dashboard."
        )
    if order.status == Status.REFUNDED:
        return "The customer has neither the money nor the license: refund again or mark it settled on /mgmt."
    return (
        "The customer kept the license but not the money: refund again or mark it settled on /mgmt."
    )


@receiver(signals.refund_failed, dispatch_uid="notify_refund_failed")
def notify_refund_failed(sender, order, refund, **kwargs) -> None:
    failure = (refund.failure_reason or "no reason given").replace("_", " ")
    _notify(
        Event.ORDER_REFUND_FAILED,
        order,
        [
            ("Refund", format_money(refund.amount_cents, refund.currency)),
            ("Failure", f"{refund.status}: {failure}"),
            ("Action", refund_failed_action(order)),
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
        (
            "Dispute fee",
            format_money(dispute.fee_cents, dispute.fee_currency or dispute.currency)
            if dispute.fee_cents
            else "",
        ),
    ]
    if change == "closed":
        closed = [*details, ("Outcome", outcome(dispute)), _net(order)]
        _notify(Event.ORDER_DISPUTE_CLOSED, order, closed)
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


def _radar_action(order) -> str:
    if order.fraud_actionable and settings.STRIPE_REFUND_ON_FRAUD_WARNING:
        return "The shop refunds it in full (STRIPE_REFUND_ON_FRAUD_WARNING); watch for the refund."
    if order.fraud_actionable:
        return (
            "Stripe advises a full refund before a dispute (and its fee) comes: refund it on /mgmt "
            "with Stripe's reason 'fraudulent'."
        )
    return "Stripe says there is nothing to act on (already disputed or refunded)."


@receiver(signals.fraud_warning_raised, dispatch_uid="notify_fraud_warning")
def notify_fraud_warning(sender, order, warning, **kwargs) -> None:
    _notify(
        Event.ORDER_FRAUD_WARNING,
        order,
        [
            ("Fraud type", warning.fraud_type_words),
            ("Actionable", "yes" if warning.actionable else "no"),
            ("Action", _radar_action(order)),
        ],
    )


@receiver(signals.review_changed, dispatch_uid="notify_review")
def notify_review(sender, order, review, change, **kwargs) -> None:
    """Told once per review, when the shop first hears of it (closed already, if its close came
    first); its close is seen on /mgmt."""
    if change == "closed":
        return
    if change == "opened":
        state = "Open: the order's keys are held until Stripe's review approves the payment."
    else:
        state = f"Closed: {review.closed_reason.replace('_', ' ') or 'no reason given'}."
    _notify(
        Event.ORDER_FRAUD_WARNING,
        order,
        [("Opened by", review.opened_reason), ("Review", state)],
        title="Payment in Radar review",
    )


@receiver(stock_low, dispatch_uid="notify_stock_low")
def notify_stock_low(sender, product, remaining, threshold, **kwargs) -> None:
    enqueue(Event.LICENSE_STOCK_LOW, stock_embed(product, remaining, threshold))


@receiver(activation_limit_reached, dispatch_uid="notify_activation_limit_reached")
def notify_activation_limit_reached(sender, license, activation, **kwargs) -> None:
    embed = activation_limit_embed(license, activation)
    enqueue(Event.LICENSE_ACTIVATION_LIMIT_REACHED, embed, order=license.order)
