"""The Stripe events the webhook benchmarks send, shaped like the ones Stripe sends (API 2025+):
a paid `checkout.session.completed`, then, against the paid order, a full `charge.refunded` or a
`charge.dispute.created`. Each order's PaymentIntent and charge ids derive from its public id,
so a later event names what the first one taught the order.
"""

import json
import time
import uuid
from typing import Any

KINDS = ("checkout", "refund", "dispute")


def dumps(event: dict[str, Any]) -> bytes:
    return json.dumps(event, indent=2).encode()  # Stripe sends pretty-printed JSON


def payment_intent_of(order) -> str:
    return f"pi_{order.public_id.hex[:24]}"


def charge_of(order) -> str:
    return f"ch_{order.public_id.hex[:24]}"


def event_for(kind: str, order) -> dict[str, Any]:
    return {"checkout": checkout_completed, "refund": charge_refunded, "dispute": dispute_created}[
        kind
    ](order)


def _event(event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
    from django.conf import settings

    return {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": settings.STRIPE_API_VERSION,
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def checkout_completed(order) -> dict[str, Any]:
    now = int(time.time())
    session = {
        "id": f"cs_test_{uuid.uuid4().hex}{uuid.uuid4().hex[:26]}",
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": order.subtotal_cents,
        "amount_total": order.subtotal_cents,
        "automatic_tax": {"enabled": False, "liability": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": f"http://127.0.0.1/checkout/cancel/{order.public_id}/",
        "client_reference_id": str(order.public_id),
        "consent": None,
        "created": now - 30,
        "currency": order.currency,
        "customer": None,
        "customer_creation": "if_required",
        "customer_details": {
            "address": {"city": None, "country": "US", "line1": None, "postal_code": "94107"},
            "email": order.email,
            "name": "Bench Buyer",
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        },
        "customer_email": order.email,
        "expires_at": now + 86_370,
        "invoice": None,
        "livemode": False,
        "locale": None,
        "metadata": {"order_id": str(order.public_id), "attempt": str(order.attempt)},
        "mode": "payment",
        "payment_intent": payment_intent_of(order),
        "payment_method_types": ["card"],
        "payment_status": "paid",
        "status": "complete",
        "success_url": "http://127.0.0.1/checkout/success/?session_id={CHECKOUT_SESSION_ID}",
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": None,
    }
    return _event("checkout.session.completed", session)


def _charge(order, *, refunded: bool) -> dict[str, Any]:
    total = order.subtotal_cents
    return {
        "id": charge_of(order),
        "object": "charge",
        "amount": total,
        "amount_captured": total,
        "amount_refunded": total if refunded else 0,
        "balance_transaction": f"txn_{order.public_id.hex[:24]}",
        "billing_details": {
            "address": {"city": None, "country": "US", "line1": None, "postal_code": "94107"},
            "email": order.email,
            "name": "Bench Buyer",
            "phone": None,
        },
        "captured": True,
        "created": int(time.time()) - 60,
        "currency": order.currency,
        "customer": None,
        "description": None,
        "livemode": False,
        "metadata": {},
        "outcome": {
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
        "paid": True,
        "payment_intent": payment_intent_of(order),
        "payment_method": f"pm_{order.public_id.hex[:24]}",
        "payment_method_details": {
            "card": {
                "brand": "visa",
                "country": "US",
                "exp_month": 8,
                "exp_year": 2030,
                "funding": "credit",
                "last4": "4242",
                "network": "visa",
            },
            "type": "card",
        },
        "receipt_email": order.email,
        "refunded": refunded,
        "status": "succeeded",
    }


def charge_refunded(order) -> dict[str, Any]:
    """The whole amount back, with its succeeded refund embedded as Stripe sends it."""
    charge = _charge(order, refunded=True)
    refund = {
        "id": f"re_{order.public_id.hex[:24]}",
        "object": "refund",
        "amount": order.subtotal_cents,
        "charge": charge_of(order),
        "created": int(time.time()),
        "currency": order.currency,
        "metadata": {},
        "payment_intent": payment_intent_of(order),
        "reason": "requested_by_customer",
        "status": "succeeded",
    }
    charge["refunds"] = {"object": "list", "data": [refund], "has_more": False}
    return _event("charge.refunded", charge)


def dispute_created(order) -> dict[str, Any]:
    dispute = {
        "id": f"dp_{order.public_id.hex[:24]}",
        "object": "dispute",
        "amount": order.subtotal_cents,
        "balance_transactions": [],
        "charge": charge_of(order),
        "created": int(time.time()),
        "currency": order.currency,
        "evidence_details": {
            "due_by": int(time.time()) + 7 * 86400,
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": True,
        "livemode": False,
        "metadata": {},
        "payment_intent": payment_intent_of(order),
        "reason": "fraudulent",
        "status": "needs_response",
    }
    return _event("charge.dispute.created", dispute)
