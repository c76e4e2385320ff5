"""What staff see of one order: display-ready, in a fixed number of queries."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch

from accounts.addresses import lookalike_warning
from licenses.models import License
from notifications.models import Delivery, Notification
from orders.checkout import refundable_amount, returned_amount
from orders.models import Order, OrderItem, Status
from orders.money import format_money


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


def order_context(order: Order) -> dict:
    money = _money(order)
    items = list(OrderItem.objects.filter(order=order).select_related("product").order_by("id"))
    licenses = list(
        License.objects.filter(order=order).select_related("product", "changed_by").order_by("id")
    )
    deliveries = Prefetch(
        "deliveries", queryset=Delivery.objects.select_related("destination").order_by("id")
    )
    notifications = list(
        Notification.objects.filter(order=order).prefetch_related(deliveries).order_by("id")
    )
    returned = returned_amount(order)
    left = refundable_amount(order)
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
        "returned": money(returned),
        "refundable": money(left),
        "history": [
            Step(t.created_at, t.from_status, t.to_status, who(t.source), t.reason)
            for t in order.transitions.all()
        ],
        "licenses": licenses,
        "refunds": [
            {"row": refund, "amount": money(refund.amount_cents)}
            for refund in order.refunds.select_related("requested_by")
        ],
        "disputes": [
            {"row": dispute, "amount": money(dispute.amount_cents)}
            for dispute in order.disputes.all()
        ],
        "mismatches": list(order.payment_mismatches.all()),
        "events": list(order.stripe_events.order_by("created", "id").defer("payload")),
        "notifications": notifications,
        "staff_actions": list(order.staff_actions.select_related("user")[:50]),
        "can_complete": order.status in (Status.PENDING, Status.FAILED),
        "can_refund": left > 0 and (order.status == Status.COMPLETED or order.refund_failed_at),
        "can_retry": order.status == Status.FAILED,
        "can_resend_keys": any(license.key for license in licenses),
        "can_settle": order.refund_failed_at is not None,
    }
