"""What staff see of one order: display-ready, in a fixed number of queries."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Prefetch, prefetch_related_objects
from django.urls import reverse

from accounts.addresses import lookalike_warning
from audit.commands import Button
from licenses import commands as license_commands
from licenses.emails import email_log
from licenses.models import License
from notifications import commands as notification_commands
from notifications.models import Delivery, Notification
from orders import amounts
from orders import commands as order_commands
from orders.models import Order, OrderItem, Status
from shop.money import format_money, format_signed


@dataclass(frozen=True)
class Step:
    at: datetime
    from_status: str
    to_status: str
    who: str
    why: str


def who(source: str) -> str:
    """An audit row's source in words: a staff member, a Stripe event, a page."""
    if source.startswith("staff:"):
        return source.removeprefix("staff:")
    if source.startswith("customer:"):
        return "customer " + source.removeprefix("customer:")
    if source.startswith("evt_"):
        return f"Stripe event {source}"
    return source


def _money(order: Order):
    return lambda cents: format_money(cents, order.currency)


# The commands drawn on an order's page, in order, with their /mgmt URL names.
ORDER_COMMANDS = [
    (order_commands.complete, "mgmt:complete"),
    (order_commands.refund, "mgmt:refund"),
    (order_commands.retry, "mgmt:retry"),
    (license_commands.resend_order_keys, "mgmt:resend_keys"),
    (order_commands.settle, "mgmt:settle"),
    (order_commands.open_test_dispute, "mgmt:open_test_dispute"),
    (order_commands.close_test_dispute_won, "mgmt:close_test_dispute_won"),
    (order_commands.close_test_dispute_lost, "mgmt:close_test_dispute_lost"),
    (order_commands.raise_test_fraud_warning, "mgmt:raise_test_fraud_warning"),
    (order_commands.open_test_review, "mgmt:open_test_review"),
    (order_commands.approve_test_review, "mgmt:approve_test_review"),
]
EMAIL_COMMANDS = [(license_commands.send_key_email_again, "mgmt:send_email_again")]
LICENSE_COMMANDS = [
    (license_commands.suspend, "mgmt:suspend_license"),
    (license_commands.reinstate, "mgmt:reinstate_license"),
    (license_commands.reset_activations, "mgmt:reset_activations"),
]


def buttons(commands: list, obj, user, *args) -> list[Button]:
    """The buttons `user` may see for `obj`: from each command's refusal, nothing else."""
    drawn = (command.button(obj, by=user, url=reverse(url, args=args)) for command, url in commands)
    return [button for button in drawn if button]


def order_context(order: Order, user) -> dict:
    money = _money(order)
    items = list(OrderItem.objects.filter(order=order).select_related("product").order_by("id"))
    # Prefetched on the order: the commands' refusals (buttons) read them with no query more.
    prefetch_related_objects(
        [order],
        Prefetch(
            "licenses",
            queryset=License.objects.select_related("product", "changed_by").order_by("id"),
        ),
        "licenses__activations",
        "disputes",
        "fraud_warnings",
        "reviews",
    )
    licenses = list(order.licenses.all())
    deliveries = Prefetch(
        "deliveries", queryset=Delivery.objects.select_related("destination").order_by("id")
    )
    notifications = list(
        Notification.objects.filter(order=order).prefetch_related(deliveries).order_by("id")
    )
    book = amounts.ledger(order)
    return {
        "order": order,
        "email_warning": lookalike_warning(order.email),
        "items": [
            {
                "name": item.product.name,
                "quantity": item.quantity,
                "unit_price": money(item.unit_price_cents),
                "amount": money(item.line_total_cents),
            }
            for item in items
        ],
        "subtotal": money(order.subtotal_cents),
        "total": money(order.total_cents),
        "ledger": ledger_lines(order, book),
        "refund_failed_words": refund_failed_words(order),
        "history": [
            Step(t.created_at, t.from_status, t.to_status, who(t.source), t.reason)
            for t in order.transitions.all()
        ],
        "licenses": [
            {
                "row": license,
                "devices": [a for a in license.activations.all() if a.deactivated_at is None],
                "buttons": buttons(LICENSE_COMMANDS, license, user, order.number, license.pk),
                "can_reveal": license_commands.reveal_key.button(license, by=user, url="")
                is not None,
            }
            for license in licenses
        ],
        "refunds": [
            {"row": refund, "amount": money(refund.amount_cents)}
            for refund in order.refunds.select_related("requested_by")
        ],
        "disputes": [
            {
                "row": dispute,
                "amount": money(dispute.amount_cents),
                "fee": format_money(dispute.fee_cents, dispute.fee_currency or order.currency)
                if dispute.fee_cents
                else "",
            }
            for dispute in order.disputes.all()
        ],
        "radar": radar_lines(order),
        "radar_alert": radar_alert(order),
        "mismatches": list(order.payment_mismatches.all()),
        "events": list(order.stripe_events.order_by("created", "id").defer("payload")),
        "notifications": notifications,
        "emails": [
            (email, buttons(EMAIL_COMMANDS, email, user, order.number, email.pk))
            for email in email_log(order)
        ],
        "actions": list(order.actions.select_related("user")[:50]),
        "buttons": buttons(ORDER_COMMANDS, order, user, order.number),
        "can_resend": notification_commands.resend_delivery.permitted(user),
    }


def ledger_lines(order: Order, book: amounts.Ledger) -> list[tuple[str, str]]:
    """The order's money as (label, amount) pairs, each only once it happened."""

    def money(cents: int) -> str:
        return format_money(cents, order.currency)

    lines = [("Catalog subtotal", money(order.subtotal_cents))]
    if order.discount_cents:
        lines.append(("Discount (promotion code)", f"−{money(order.discount_cents)}"))
    if order.tax_cents:
        lines.append(("Tax", money(order.tax_cents)))
    if not order.is_paid:
        return [*lines, ("To pay", money(order.total_cents))]
    lines.append(("Charged", money(book.charged)))
    lines.append(("Refunded", money(book.refunded)))
    if book.refund_pending:
        lines.append(("Refund pending", money(book.refund_pending)))
    if book.chargebacks:
        lines.append(("Chargebacks", money(book.chargebacks)))
    if book.dispute_fees:
        lines.append(("Dispute fees", money(book.dispute_fees)))
    lines.append(("Net", format_signed(book.net, order.currency)))
    if amounts.refunds_blocked(order):
        lines.append(("Left to refund", "none: a chargeback holds the money"))
    else:
        lines.append(("Left to refund", money(book.left_to_refund)))
    return lines


def radar_lines(order: Order) -> list[str]:
    """What Stripe Radar said about the payment, in words, each warning and review once."""
    lines = []
    for warning in order.fraud_warnings.all():
        state = "actionable" if warning.actionable else "not actionable (disputed or refunded)"
        line = (
            f"Early fraud warning {warning.stripe_warning_id}: {warning.fraud_type_words}, {state}."
        )
        if warning.auto_refund:
            line += f" Automatic refund: {warning.get_auto_refund_display().lower()}"
            line += f" ({warning.auto_refund_detail})." if warning.auto_refund_detail else "."
        lines.append(line)
    for review in order.reviews.all():
        opened = f"Review {review.stripe_review_id} opened by {review.opened_reason or 'Radar'}"
        if review.open:
            lines.append(f"{opened}: open, the keys are held until Stripe approves the payment.")
        else:
            held = " The keys stay held until the refund revokes them." if review.holds_keys else ""
            reason = review.closed_reason.replace("_", " ") or "no reason given"
            lines.append(f"{opened}: closed, {reason}.{held}")
    return lines


def radar_alert(order: Order) -> str:
    """What staff should do about an actionable warning, while it is (settings decide who)."""
    if not order.fraud_actionable or order.status == Status.REFUNDED:
        return ""
    kind = order.fraud_type.replace("_", " ") or "fraud"
    if settings.STRIPE_REFUND_ON_FRAUD_WARNING:
        return (
            f"Stripe Radar sent an early fraud warning ({kind}): the shop refunds this order in full "
            "(STRIPE_REFUND_ON_FRAUD_WARNING)."
        )
    return (
        f"Stripe Radar sent an early fraud warning ({kind}) and calls it actionable: Stripe "
        "advises refunding it in full (Stripe's reason: fraudulent) before a dispute, and its "
        "fee, comes."
    )


def refund_failed_words(order: Order) -> str:
    """What the failed-refund flag asks staff to do, as things stand."""
    if not order.refund_failed_at:
        return ""
    if amounts.refunds_blocked(order):
        return "A chargeback holds the money now: answer the dispute in the Stripe Dashboard."
    if order.status == Status.REFUNDED:
        return (
            "The customer has neither the money nor the licenses. Refund again or mark it settled."
        )
    return "The customer kept the licenses but not the money. Refund again or mark it settled."
