"""What each Stripe event type means for an order: how to find the order, and which facts to merge.

Shared by the webhook, the replay command and the events that waited for their order.
"""

import uuid
from collections.abc import Callable
from typing import Any

from . import facts
from .facts import Changes, id_of
from .models import CheckoutSession, Order
from .statements import locked_order

Handler = Callable[[Order, dict[str, Any], dict[str, Any], Changes], None]


def references(obj: dict[str, Any]) -> tuple[str, str]:
    """The (PaymentIntent, charge) ids a charge, refund or dispute names; ("", "") otherwise."""
    kind = obj.get("object")
    if kind not in ("charge", "refund", "dispute", "radar.early_fraud_warning", "review"):
        return "", ""
    charge = obj.get("id") if kind == "charge" else id_of(obj.get("charge"))
    return id_of(obj.get("payment_intent")), str(charge or "")


def locate_order(obj: dict[str, Any]) -> Order | None:
    """The order an event's object belongs to, locked for the merge."""
    kind = obj.get("object")
    order_id = (obj.get("metadata") or {}).get("order_id") or obj.get("client_reference_id")
    if order_id and kind in ("checkout.session", "payment_intent", "invoice"):
        try:
            return locked_order("public_id", uuid.UUID(str(order_id)))
        except ValueError:
            return None
    if kind == "checkout.session":
        return locked_order("stripe_session_id", obj["id"])
    if kind == "payment_intent":
        return locked_order("stripe_payment_intent_id", obj["id"])
    payment_intent, charge = references(obj)
    order = locked_order("stripe_payment_intent_id", payment_intent) if payment_intent else None
    if order is None and charge:
        order = locked_order("stripe_charge_id", charge)
    return order


def _on_session(order, session, event, changes) -> None:
    facts.record_session(order, session, changes, source=event["id"])


def _session_failure(code: str, message: str) -> Handler:
    def handle(order, session, event, changes) -> None:
        changes.refused = facts.session_problem(order, session)
        if changes.refused:
            return  # another integration's session ending says nothing about this order
        if code == "expired" and _closed_by_shop(session):
            return  # staff completed or retried the order: no failure of the buyer's
        facts.record_failure(
            order,
            changes,
            attempt=facts.attempt_of(session),
            code=code,
            message=message,
            created=int(event.get("created") or 0),
            source=event["id"],
        )

    return handle


def _on_payment_failed(order, intent, event, changes) -> None:
    attempt = facts.attempt_of(intent)
    if attempt not in (None, order.attempt):
        return  # an older attempt's PaymentIntent must not become the order's
    error = intent.get("last_payment_error") or {}
    # Its id is not kept: anyone's PaymentIntent may carry this order's id in its metadata, and
    # refunds and disputes find orders by the ids kept. The paying session brings the real one.
    facts.record_failure(
        order,
        changes,
        attempt=attempt,
        code=error.get("decline_code") or error.get("code") or "payment_failed",
        message=error.get("message") or "The payment failed.",
        created=int(event.get("created") or 0),
        source=event["id"],
    )


def _on_charge(order, charge, event, changes) -> None:
    version = str(event.get("api_version") or "")
    facts.record_charge(order, charge, changes, source=event["id"], api_version=version)


def _on_refund(order, refund, event, changes) -> None:
    facts.record_refund(order, refund, changes, source=event["id"])


def _on_dispute(order, dispute, event, changes) -> None:
    facts.record_dispute(
        order,
        dispute,
        changes,
        event_type=event["type"],
        created=int(event.get("created") or 0),
        source=event["id"],
    )


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _on_session,
    "checkout.session.async_payment_succeeded": _on_session,
    "checkout.session.async_payment_failed": _session_failure(
        "async_payment_failed", "The delayed payment failed."
    ),
    "checkout.session.expired": _session_failure("expired", "The checkout session expired."),
    "payment_intent.payment_failed": _on_payment_failed,
    "charge.refunded": _on_charge,
    "refund.created": _on_refund,
    "refund.updated": _on_refund,
    "refund.failed": _on_refund,
    "charge.dispute.created": _on_dispute,
    "charge.dispute.updated": _on_dispute,
    "charge.dispute.closed": _on_dispute,
    "charge.dispute.funds_withdrawn": _on_dispute,
    "charge.dispute.funds_reinstated": _on_dispute,
}


def _on_fraud_warning(order, warning, event, changes) -> None:
    facts.record_fraud_warning(order, warning, changes)


def _on_review(order, review, event, changes) -> None:
    facts.record_review(order, review, changes)


HANDLERS |= {
    "radar.early_fraud_warning.created": _on_fraud_warning,
    "radar.early_fraud_warning.updated": _on_fraud_warning,
    "review.opened": _on_review,
    "review.closed": _on_review,
}


def _on_invoice(order, invoice, event, changes) -> None:
    facts.record_invoice_links(order, invoice, changes)


HANDLERS |= {"invoice.finalized": _on_invoice, "invoice.paid": _on_invoice}


def _closed_by_shop(session: dict[str, Any]) -> bool:
    return CheckoutSession.objects.filter(
        stripe_session_id=session.get("id") or "", closed_at__isnull=False
    ).exists()
