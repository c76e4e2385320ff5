"""What the webhook tests share: posting signed bodies, building Stripe objects, snapshots."""

import json
from collections.abc import Callable
from typing import Any

from django.conf import settings as django_settings

from orders.models import Dispute, Order, OrderTransition, Refund, StripeEvent
from orders.webhooks import sign_payload
from testkit.signing import signed_post
from testkit.stripe_objects import (
    dispute_obj,
    intent_failed_obj,
    make_event,
    refund_obj,
    session_obj,
)

URL = "/stripe/webhook/"
FAILURE_TYPES = [
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "payment_intent.payment_failed",
]
# Ceilings, measured with one item: the event row (one INSERT … ON CONFLICT), the order's lock, the
# waiting-events look-up, the move (one conditional UPDATE that also writes the facts) and its
# audit row, the outcome, and what the receivers add (the order items, licenses and their key
# email, one Discord outbox statement per notification on PostgreSQL, two on SQLite), with the
# test's savepoint around the request. PostgreSQL writes the move and its audit row in one
# statement, and adds the advisory lock taken when the order learns its PaymentIntent (or, for a
# refund or dispute, its charge). A full refund also writes its refund row and sums the succeeded
# ones, then revokes the licenses and ends their devices' activations (one UPDATE each); a
# dispute writes its row, summarises the order's disputes and suspends the licenses (one UPDATE,
# the open dispute's id by a subquery). What matters is that they never grow with the items. A
# session's event also looks up the Checkout Session the shop recorded for the order
# (facts.session_problem).
SESSION_COMPLETED_QUERIES = {"sqlite": 16, "postgresql": 14}
# Both also tell the buyer (licenses.notices): the order's licenses, and the email's row.
FULL_REFUND_QUERIES = {"sqlite": 17, "postgresql": 17}
DISPUTE_CREATED_QUERIES = {"sqlite": 16, "postgresql": 16}
# The test's savepoint around the request, the insert that finds the id taken, the stored row.
DUPLICATE_QUERIES = {"sqlite": 4, "postgresql": 4}


def post(client, body: bytes, signature: str | None):
    headers = {} if signature is None else {"HTTP_STRIPE_SIGNATURE": signature}
    return client.post(URL, body, content_type="application/json", **headers)


def v1(body: bytes, timestamp: int, secret: str = "") -> str:
    """The bare `v1` signature Stripe would send for `body` (our own secret unless told)."""
    header = sign_payload(body, secret or django_settings.STRIPE_WEBHOOK_SECRET, timestamp)
    return header.split("v1=")[1]


def body_of(event: Any) -> bytes:
    return json.dumps(event).encode()


def deliver(client, event: dict[str, Any]) -> StripeEvent:
    response = signed_post(client, event)
    assert response.status_code == 200, response.content
    stored = StripeEvent.objects.get(id=event["id"])
    assert response.json() == {"received": True, "outcome": stored.outcome}
    return stored


def send(client, order: Order, event_type: str, obj: dict[str, Any], **fields) -> StripeEvent:
    stored = deliver(client, make_event(event_type, obj, **fields))
    order.refresh_from_db()
    return stored


def pay(client, order: Order) -> StripeEvent:
    return send(client, order, "checkout.session.completed", session_obj(order))


def last_move(order: Order) -> tuple[str, str, str, str]:
    row = OrderTransition.objects.filter(order=order).last()
    return row.from_status, row.to_status, row.source, row.reason


def old_attempt(order: Order) -> dict[str, str]:
    return {"order_id": str(order.public_id), "attempt": str(order.attempt - 1)}


def snapshot(order: Order) -> tuple:
    """Everything an event can change, to compare before and after."""
    order.refresh_from_db()
    return (
        Order.objects.filter(pk=order.pk).values().get(),
        list(OrderTransition.objects.filter(order=order).values()),
        list(Refund.objects.values()),
        list(Dispute.objects.values()),
        StripeEvent.objects.count(),
    )


def refused(response, status: int = 400) -> None:
    assert response.status_code == status, response.content
    assert "error" in response.json()
    assert StripeEvent.objects.count() == 0


Build = Callable[[Order], dict[str, Any]]


def unpaid_session(order: Order, **fields) -> dict[str, Any]:
    return session_obj(order, **{"payment_status": "unpaid", **fields})


def full_refund(status: str) -> Build:
    return lambda order: refund_obj(order, "re_1", order.subtotal_cents, status)


def dispute(status: str) -> Build:
    return lambda order: dispute_obj(order, "dp_1", status)


def failure_obj(order: Order, event_type: str, **fields) -> dict[str, Any]:
    if event_type == "payment_intent.payment_failed":
        return intent_failed_obj(order, **fields)
    status = "expired" if event_type == "checkout.session.expired" else "complete"
    return session_obj(order, **{"status": status, "payment_status": "unpaid", **fields})
