"""Plain factories and Stripe-shaped builders shared by the tests."""

import itertools
import json
import time
import uuid
from typing import Any

from django.conf import settings

from orders.checkout import place_order
from orders.models import CheckoutSession, LicenseKind, Order, Product
from orders.webhooks import sign_payload

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


def make_event(event_type: str, obj: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": settings.STRIPE_API_VERSION,
        "created": int(time.time()),
        "livemode": False,
        "type": event_type,
        "data": {"object": obj},
        **fields,
    }


def session_obj(order: Order, **fields: Any) -> dict[str, Any]:
    return {
        "id": order.stripe_session_id or f"cs_test_{order.number}",
        "object": "checkout.session",
        "status": "complete",
        "payment_status": "paid",
        "amount_subtotal": order.subtotal_cents,
        "amount_total": order.subtotal_cents,
        "currency": order.currency,
        "client_reference_id": str(order.public_id),
        "metadata": {"order_id": str(order.public_id), "attempt": str(order.attempt)},
        "payment_intent": f"pi_{order.number}",
        **fields,
    }


def intent_failed_obj(order: Order, code: str = "card_declined", **fields: Any) -> dict[str, Any]:
    return {
        "id": f"pi_{order.number}",
        "object": "payment_intent",
        "metadata": {"order_id": str(order.public_id), "attempt": str(order.attempt)},
        "last_payment_error": {"decline_code": code, "message": "Your card was declined."},
        **fields,
    }


def charge_obj(order: Order, refunded: int = 0, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"ch_{order.number}",
        "object": "charge",
        "amount": order.subtotal_cents,
        "amount_refunded": refunded,
        "currency": order.currency,
        "payment_intent": f"pi_{order.number}",
        "payment_method_details": {"type": "card", "card": {"brand": "visa", "last4": "4242"}},
        **fields,
    }


def refund_obj(order: Order, refund_id: str, amount: int, status: str = "succeeded") -> dict:
    return {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "currency": order.currency,
        "charge": f"ch_{order.number}",
        "payment_intent": f"pi_{order.number}",
        "status": status,
    }


def dispute_obj(order: Order, dispute_id: str, status: str = "needs_response") -> dict:
    return {
        "id": dispute_id,
        "object": "dispute",
        "amount": order.subtotal_cents,
        "currency": order.currency,
        "charge": f"ch_{order.number}",
        "payment_intent": f"pi_{order.number}",
        "reason": "fraudulent",
        "status": status,
        "evidence_details": {"due_by": int(time.time()) + 7 * 86400},
    }


def signed_post(client, event: dict | bytes, *, secret: str | None = None, timestamp=None):
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    header = sign_payload(body, secret or settings.STRIPE_WEBHOOK_SECRET, timestamp)
    return client.post(
        "/stripe/webhook/", body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )


def add_item(order: Order, *, product: Product | None = None, quantity: int = 1):
    """Another line on `order`, priced as checkout would; the subtotal grows with it."""
    product = product or make_product()
    item = order.items.create(
        product=product, quantity=quantity, unit_price_cents=product.price_cents
    )
    order.subtotal_cents += item.line_total_cents
    order.save()
    # The session the shop made for it asked for every line (test setup adds lines after it).
    order.checkout_sessions.update(amount_cents=order.subtotal_cents)
    return item


def force_status(order: Order, status: str) -> Order:
    """Test setup only: put `order` in `status` without the state machine or its audit row."""
    Order.objects.filter(pk=order.pk).update(status=status)
    order.status = status
    return order
