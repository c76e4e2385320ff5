"""An order's receipt, display-ready: what the buyer paid for, how much, how, and what came back.
One builder for the receipt page (the thank-you page), /account and the keys email, so the three
say the same amounts in the same words.

Discount and tax are shown when the order records them (Stripe reports them in the Checkout
Session's `total_details`); with `STRIPE_INVOICES` on, Stripe's own invoice (hosted page and PDF)
is linked instead of our drawing of it.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.http import HttpRequest

from shop.money import format_money

from . import amounts
from .models import Order


@dataclass(frozen=True)
class Line:
    name: str
    quantity: int
    unit_price: str
    amount: str


@dataclass(frozen=True)
class Receipt:
    lines: list[Line]
    subtotal: str
    total: str  # what was (or is to be) charged
    paid: bool
    paid_at: datetime | None
    payment_method: str
    discount: str = ""
    tax: str = ""
    refunded: str = ""  # "" when nothing came back
    net: str = ""
    invoice_url: str = ""
    invoice_pdf: str = ""
    rows: list[tuple[str, str]] = field(default_factory=list)  # label, amount, in order


def _cents(order: Order, name: str) -> int:
    # Recorded by the checkout when Stripe reports them (another change adds the fields).
    return getattr(order, name, 0) or 0


def _invoice_links(order: Order) -> dict[str, str]:
    """Stripe's invoice of the paying session, once an `invoice.*` event told its links."""
    if order.stripe_invoice_id and order.invoice_links_for == order.stripe_invoice_id:
        return {"invoice_url": order.invoice_url, "invoice_pdf": order.invoice_pdf_url}
    return {}


def build_receipt(order: Order) -> Receipt:
    """The order's receipt (its items read once per order instance, and one sum of refunds)."""
    money = lambda cents: format_money(cents, order.currency)  # noqa: E731
    lines = [
        Line(
            item.product.name,
            item.quantity,
            money(item.unit_price_cents),
            money(item.line_total_cents),
        )
        for item in order.line_items()
    ]
    discount, tax = _cents(order, "discount_cents"), _cents(order, "tax_cents")
    refunded = amounts.refunded(order) if order.is_paid else 0
    total = order.total_cents
    rows = [("Subtotal", money(order.subtotal_cents))]
    if discount:
        rows.append(("Discount", "−" + money(discount)))
    if tax:
        rows.append(("Tax", money(tax)))
    rows.append(("Paid" if order.is_paid else "To pay", money(total)))
    if refunded:
        rows += [("Refunded", "−" + money(refunded)), ("Net", money(total - refunded))]
    return Receipt(
        lines=lines,
        subtotal=money(order.subtotal_cents),
        total=money(total),
        paid=order.is_paid,
        paid_at=order.paid_at,
        payment_method=order.payment_method,
        discount=money(discount) if discount else "",
        tax=money(tax) if tax else "",
        refunded=money(refunded) if refunded else "",
        net=money(total - refunded) if refunded else "",
        **_invoice_links(order),
        rows=rows,
    )


# The orders this browser placed (their public ids, newest last), kept in its session.
BOUGHT_HERE = "orders.bought_here"
REMEMBERED = 20


def remember_buyer(request: HttpRequest, order: Order) -> None:
    """Mark `order` as bought in this browser, so its receipt may show the keys here."""
    bought = [pid for pid in request.session.get(BOUGHT_HERE, []) if pid != str(order.public_id)]
    request.session[BOUGHT_HERE] = [*bought, str(order.public_id)][-REMEMBERED:]


def shows_keys(request: HttpRequest, order: Order) -> bool:
    """Keys on the receipt page: once paid, and only to the browser that placed the order or to
    the buyer signed in with its email. The page's link travels (emails are forwarded, screens
    shared, Stripe's success redirect names the session): holding it shows the receipt, never a
    key."""
    if not order.is_paid:
        return False
    if str(order.public_id) in request.session.get(BOUGHT_HERE, []):
        return True
    user = request.user
    return user.is_authenticated and user.email == order.email
