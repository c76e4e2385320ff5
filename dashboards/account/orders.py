"""What a signed-in customer sees of their orders, and the two things they may do to one."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.paginator import Page, Paginator
from django.db.models import Prefetch, QuerySet, prefetch_related_objects
from django.urls import reverse
from django.utils import timezone

from licenses import commands as license_commands
from licenses.emails import email_log
from licenses.models import License, Renewal
from orders import amounts
from orders import commands as order_commands
from orders.checkout import open_checkout
from orders.history import failure_words, order_history
from orders.models import LicenseKind, Order, OrderItem, Status
from orders.receipt import build_receipt
from shop.money import format_money

ORDERS_PER_PAGE = 20


def customer_orders(user) -> QuerySet[Order]:
    """The orders `user` may see: those bought with their email (the checkout's identity).
    Every customer lookup goes through here, so a stranger's order is simply not found."""
    if not user.is_authenticated:
        return Order.objects.none()
    return Order.objects.filter(email=user.email)  # both canonical: an exact match


@dataclass(frozen=True)
class OrderRow:
    number: str
    url: str
    placed_at: datetime
    items: str
    total: str
    status: str


def _items_summary(items: list[OrderItem]) -> str:
    names = [f"{item.product.name} × {item.quantity}" for item in items]
    if len(names) > 3:
        return ", ".join(names[:2]) + f" and {len(names) - 2} more"
    return ", ".join(names)


def orders_page(*, user, page_number: str | None) -> tuple[Page, list[OrderRow]]:
    """One page of the customer's orders, newest first, with their items in two queries."""
    products = OrderItem.objects.select_related("product").order_by("id")
    orders = customer_orders(user).order_by("-created_at", "-id")
    orders = orders.prefetch_related(Prefetch("items", queryset=products))
    page = Paginator(orders, ORDERS_PER_PAGE).get_page(page_number)
    rows = [
        OrderRow(
            number=order.number,
            url=reverse("account:order", args=[order.number]),
            placed_at=order.created_at,
            items=_items_summary(list(order.items.all())),
            total=format_money(order.total_cents, order.currency),
            status=order.status,
        )
        for order in page.object_list
    ]
    return page, rows


def status_sentence(order: Order, checkout=None) -> str:
    """What the order's status means for the buyer, in one or two sentences (from its ledger:
    a refund is told as on its way, back, or failed, as Stripe reports it)."""
    main = _status_sentence(order, checkout)
    if not order.is_paid:
        return main
    book = amounts.ledger(order)
    extra = []
    if book.refund_pending:
        extra.append(
            f"A refund of {format_money(book.refund_pending, order.currency)} is on its way to "
            "you; banks take 5 to 10 days to show it."
        )
    if order.refund_failed_at:
        extra.append("A refund to you failed; we are looking into it and will be in touch.")
    if order.review_hold and order.status in (Status.COMPLETED, Status.DISPUTED):
        # Stripe Radar's review: the buyer is told of a hold, never of a suspicion of fraud.
        extra.append(
            "Your payment is going through a routine check with our payment provider; your keys "
            "are on hold until it is done, usually within a day or two."
        )
    return " ".join([main, *extra])


def _status_sentence(order: Order, checkout) -> str:
    total = format_money(order.total_cents, order.currency)
    refunded = amounts.refunded(order)
    if order.status == Status.PENDING and order.async_payment_pending:
        return "Your bank payment is on its way; banks can take a few days to confirm it."
    if order.status == Status.PENDING and checkout:
        return "Your checkout is still open: nothing has been paid yet."
    if order.status == Status.PENDING:
        return "Waiting for your payment to be confirmed."
    if order.status == Status.COMPLETED and refunded:
        return f"Paid. {format_money(refunded, order.currency)} of {total} was refunded to you."
    if order.status == Status.COMPLETED:
        return "Paid. Thank you for your order!"
    if order.status == Status.FAILED:
        words = failure_words(order.failure_code, order.failure_message)
        return f"{words}. You were not charged."
    if order.status == Status.REFUNDED and order.disputes_summary == "lost":
        return "Your bank reversed this payment (chargeback)."
    if order.status == Status.REFUNDED:
        back = format_money(refunded, order.currency)
        return f"Refunded: {back} went back to you. Banks take 5 to 10 days to show it."
    if order.status == Status.DISPUTED and order.chargebacks_cents:
        return (
            "Your bank took this payment back while it looks into a dispute (a chargeback). "
            "Its licenses are suspended until the dispute ends."
        )
    if order.status == Status.DISPUTED:
        return "Your bank asked us about this payment. Its licenses are suspended until that ends."
    return ""


def order_page(order: Order, user) -> dict:
    """Display-ready context for the order page and its live fragment (a fixed number of queries,
    whatever the number of items, licenses and status changes)."""
    items = order.line_items()
    checkout = open_checkout(order)
    ordered = License.objects.select_related("product", "order").order_by("created_at", "id")
    prefetch_related_objects(
        [order],
        Prefetch("licenses", queryset=ordered),
        "licenses__activations",
        Prefetch("licenses__renewals", queryset=Renewal.objects.select_related("order")),
    )
    licenses = list(order.licenses.all())  # the commands' refusals read these too
    history = order_history(
        order, transitions=list(order.transitions.all()), refunds=list(order.refunds.all())
    )
    return {
        "order": order,
        "items": [
            {
                "name": item.product.name,
                "quantity": item.quantity,
                "unit_price": format_money(item.unit_price_cents, order.currency),
                "amount": format_money(item.line_total_cents, order.currency),
            }
            for item in items
        ],
        "total": format_money(order.total_cents, order.currency),
        "receipt": build_receipt(order),
        "sentence": status_sentence(order, checkout),
        "history": history,
        "licenses": [license_entry(license, user) for license in licenses],
        "expects_keys": any(item.product.license_kind != LicenseKind.NONE for item in items),
        # Drawn from the commands' refusals (a refused button is not shown to customers).
        "can_pay_again": order_commands.pay_again.refusal(order, by=user) is None,
        "can_resend_keys": license_commands.resend_my_keys.refusal(order, by=user) is None,
        "checkout": checkout,
        "emails": email_log(order),
        # It may be paid in another tab meanwhile: the quiet htmx poll goes on.
        "live": order.status == Status.PENDING,
    }


# An expiring license offers its renewal this long before it expires (and after).
RENEW_WITHIN = timedelta(days=30)


def license_entry(license: License, user) -> dict:
    """A license as its owner sees it: the key or its state, its devices (each with Deactivate,
    or why not), its terms and, when it expires soon or has expired, Renew."""
    now = timezone.now()
    devices = [a for a in license.activations.all() if a.deactivated_at is None]
    expires = license.expires_at
    renew = None
    if license_commands.renew.applies(license) and expires - now <= RENEW_WITHIN:
        renew = {"reason": license_commands.renew.refusal(license, by=user) or ""}
    # Whether a device may be deactivated depends on its license (owner, the 30-day limit),
    # not on the device: asked once per license.
    reason = license_commands.deactivate_device.refusal(devices[0], by=user) if devices else ""
    return {
        "license": license,
        "devices": devices,
        "deactivate_refused": reason or "",
        "used": len(devices),
        "expired": expires is not None and expires <= now,
        "renew": renew,
    }
