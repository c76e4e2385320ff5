"""Rows the tests start from: products, orders and the sessions that may pay them. (Stripe-shaped
objects come from testkit.stripe_objects.)"""

import itertools
from typing import Any

from orders.checkout import place_order
from orders.models import CheckoutSession, LicenseKind, Order, Product

_seq = itertools.count(1)


def make_product(**fields: Any) -> Product:
    n = next(_seq)
    defaults = {
        "slug": f"product-{n}",
        "name": f"Product {n}",
        "price_cents": 2500,
        "currency": "usd",
        "license_kind": LicenseKind.GENERATED,
    }
    return Product.objects.create(**{**defaults, **fields})


def make_order(*, product: Product | None = None, quantity: int = 1, email: str = "") -> Order:
    """A pending order with the Checkout Session the shop would have created for it
    (`cs_test_<number>`, what `session_obj` names): only such a session may pay it."""
    product = product or make_product()
    order = place_order(
        product=product, quantity=quantity, email=email or f"buyer{next(_seq)}@example.com"
    )
    paid_by(order, f"cs_test_{order.number}")
    return order


def paid_by(order: Order, session_id: str, **fields: Any) -> CheckoutSession:
    """Record `session_id` as a Checkout Session the shop created for `order` (test setup: the
    gateway is not asked), so that events naming it may pay the order."""
    return CheckoutSession.objects.create(
        order=order,
        stripe_session_id=session_id,
        attempt=fields.pop("attempt", order.attempt),
        amount_cents=fields.pop("amount_cents", order.subtotal_cents),
        currency=fields.pop("currency", order.currency),
    )


def add_item(order: Order, *, product: Product | None = None, quantity: int = 1):
    """Another line on `order`, priced as checkout would; the subtotal grows with it."""
    product = product or make_product()
    item = order.items.create(
        product=product, quantity=quantity, unit_price_cents=product.price_cents
    )
    order.subtotal_cents += item.line_total_cents
    order.product_names = f"{order.product_names}, {product.name}"[:500]
    order.save()
    # The session the shop made for it asked for every line (test setup adds lines after it).
    order.checkout_sessions.update(amount_cents=order.subtotal_cents)
    return item


def force_status(order: Order, status: str) -> Order:
    """Test setup only: put `order` in `status` without the state machine or its audit row."""
    Order.objects.filter(pk=order.pk).update(status=status)
    order.status = status
    return order
