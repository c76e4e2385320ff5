"""Stripe webhooks: verify the signature over the raw body, store each event once, apply its facts.

`receive()` is the whole path for a delivered body (the view and the offline gateway call it).
`handle_stripe_event()` is the part after verification, shared with `stripe_replay_events`.
"""

import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import stripe
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from . import facts
from .gateways import livemode_expected
from .models import Order, OrderTransition, StripeEvent
from .transitions import sync_status

log = logging.getLogger(__name__)
Outcome = StripeEvent.Outcome


class WebhookError(Exception):
    """The delivery is refused (400): nothing was stored."""


def sign_payload(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header value, as Stripe computes it."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(body: bytes, signature: str | None) -> dict[str, Any]:
    """The event in `body`, if `signature` is a valid one by our secret within the tolerance."""
    if not signature:
        raise WebhookError("missing Stripe-Signature header")
    if not signature.isascii():
        # hmac.compare_digest raises TypeError on non-ASCII text instead of saying "no match".
        raise WebhookError("bad signature: not ASCII")
    try:
        payload = body.decode("utf-8")
        stripe.WebhookSignature.verify_header(
            payload, signature, settings.STRIPE_WEBHOOK_SECRET, settings.STRIPE_WEBHOOK_TOLERANCE
        )
        event = json.loads(payload)
    except stripe.SignatureVerificationError as error:
        raise WebhookError(f"bad signature: {error.user_message}") from None
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: absurdly deep JSON
        raise WebhookError("body is not JSON") from None
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and 0 < len(event["id"]) <= 255
        and isinstance(event.get("type"), str)
        and len(event["type"]) <= 100
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
        and _is_timestamp(event.get("created"))
    ):
        raise WebhookError("body is not a Stripe event")
    return event


def _is_timestamp(value: Any) -> bool:
    """Missing is allowed (the time of receipt stands in); else it must fit `StripeEvent.created`."""
    return value is None or (type(value) is int and 0 <= value < 2**63)


def receive(body: bytes, signature: str | None) -> StripeEvent:
    return handle_stripe_event(verify(body, signature))


def handle_stripe_event(event: dict[str, Any]) -> StripeEvent:
    """Store the event once and apply it. A duplicate returns the stored row untouched.

    Runs in one transaction: an exception rolls back the stored event too, so Stripe's retry
    finds it new again.
    """
    with transaction.atomic():
        record = _store_once(event)
        if record is None:
            return StripeEvent.objects.get(id=event["id"])
        outcome, order, detail = _dispatch(event, record)
        record.outcome, record.order, record.detail = outcome, order, detail[:500]
        record.save(update_fields=["outcome", "order", "detail", "payment_intent_id"])
    log.info("stripe event %s %s: %s %s", record.id, record.type, outcome, detail)
    return record


def _store_once(event: dict[str, Any]) -> StripeEvent | None:
    """Insert the event unless its id is stored already (then None). One statement, no savepoint:
    a concurrent delivery of the same id waits for the first to commit, then inserts nothing."""
    record = StripeEvent(
        id=event["id"],
        type=event["type"],
        livemode=bool(event.get("livemode")),
        created=int(event.get("created") or time.time()),
        payload=event,
        outcome=Outcome.NO_CHANGE,
    )
    fields = StripeEvent._meta.concrete_fields
    quote = connection.ops.quote_name
    values = [f.get_db_prep_save(f.pre_save(record, add=True), connection) for f in fields]
    sql = (
        f"INSERT INTO {quote(StripeEvent._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT ({quote('id')}) DO NOTHING RETURNING 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        inserted = cursor.fetchone()
    record._state.adding = False
    return record if inserted else None


def _dispatch(event: dict[str, Any], record: StripeEvent) -> tuple[str, Order | None, str]:
    handler = HANDLERS.get(event["type"])
    if handler is None:
        return Outcome.UNHANDLED, None, ""
    if record.livemode != livemode_expected():
        return Outcome.LIVEMODE_MISMATCH, None, f"livemode={record.livemode}"
    obj = event["data"]["object"]
    pi = _payment_intent_of(obj)
    if pi:
        _lock_payment_intent(pi)
    order = locate_order(obj)
    if order is None:
        record.payment_intent_id = pi
        return Outcome.UNKNOWN_ORDER, None, "no order matches this event yet"
    changed, transition = apply_facts(order, lambda: handler(order, obj, event), source=event["id"])
    if not (changed or transition):
        return Outcome.NO_CHANGE, order, ""
    return Outcome.APPLIED, order, str(transition) if transition else "facts recorded"


def apply_facts(
    order: Order, merge: Callable[[], bool], *, source: str
) -> tuple[bool, OrderTransition | None]:
    """Run `merge` on the locked order, catch up on events that waited for its PaymentIntent,
    and bring the status in line. Returns (facts changed, transition made)."""
    known_pi = order.stripe_payment_intent_id
    changed = merge()
    if order.stripe_payment_intent_id != known_pi:
        changed |= _apply_deferred(order)
    if changed:
        order.save(update_fields=facts.FACT_FIELDS)
    return changed, sync_status(order, source=source)


def _apply_deferred(order: Order) -> bool:
    """Apply refund and dispute events that arrived before the order knew its PaymentIntent."""
    _lock_payment_intent(order.stripe_payment_intent_id)
    waiting = StripeEvent.objects.filter(
        outcome=Outcome.UNKNOWN_ORDER, payment_intent_id=order.stripe_payment_intent_id
    ).order_by("created", "id")
    changed = False
    for stored in waiting:
        before = {name: getattr(order, name) for name in facts.FACT_FIELDS}
        try:
            with transaction.atomic():  # one event Stripe never sent right must not block the rest
                changed |= HANDLERS[stored.type](
                    order, stored.payload["data"]["object"], stored.payload
                )
        except (KeyError, TypeError, ValueError, DatabaseError) as error:
            for name, value in before.items():  # the savepoint undid the rows, this the order
                setattr(order, name, value)
            log.error("stored event %s could not be applied: %r", stored.id, error)
            stored.detail = f"could not be applied late: {type(error).__name__}"
        else:
            stored.outcome, stored.detail = Outcome.APPLIED, "applied late"
        stored.order = order
        stored.save(update_fields=["outcome", "order", "detail"])
    return changed


def _lock_payment_intent(pi: str) -> None:
    """Serialise "event for a PaymentIntent no order knows yet" with "order learns that
    PaymentIntent", so a deferred event is never stored unseen by the order that needs it.
    SQLite needs nothing: its IMMEDIATE transactions already run one at a time."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [pi])


def _payment_intent_of(obj: dict[str, Any]) -> str:
    if obj.get("object") in ("charge", "refund", "dispute"):
        pi = obj.get("payment_intent")
        return (pi.get("id") if isinstance(pi, dict) else pi) or ""
    return ""


def locate_order(obj: dict[str, Any]) -> Order | None:
    # NO KEY UPDATE: rows that merely point at the order (a queued key email, a license) can
    # still be written meanwhile, so a key import and a webhook never deadlock.
    orders = Order.objects.select_for_update(no_key=True)
    order_id = (obj.get("metadata") or {}).get("order_id") or obj.get("client_reference_id")
    if order_id and obj.get("object") in ("checkout.session", "payment_intent"):
        try:
            return orders.filter(public_id=uuid.UUID(str(order_id))).first()
        except ValueError:
            return None
    if obj.get("object") == "checkout.session":
        return orders.filter(stripe_session_id=obj["id"]).first()
    if obj.get("object") == "payment_intent":
        return orders.filter(stripe_payment_intent_id=obj["id"]).first()
    pi = _payment_intent_of(obj)
    charge = obj["id"] if obj.get("object") == "charge" else obj.get("charge")
    if pi:
        return orders.filter(stripe_payment_intent_id=pi).first()
    return orders.filter(stripe_charge_id=charge).first() if charge else None


def _on_session(order: Order, session: dict[str, Any], event: dict[str, Any]) -> bool:
    return facts.record_session(order, session, source=event["id"])


def _session_failure(code: str, message: str) -> Callable[..., bool]:
    def handle(order: Order, session: dict[str, Any], event: dict[str, Any]) -> bool:
        return facts.record_failure(
            order,
            attempt=facts.attempt_of(session),
            code=code,
            message=message,
            created=int(event.get("created") or 0),
            source=event["id"],
        )

    return handle


def _on_payment_failed(order: Order, intent: dict[str, Any], event: dict[str, Any]) -> bool:
    attempt = facts.attempt_of(intent)
    if attempt not in (None, order.attempt):
        return False  # an older attempt's PaymentIntent must not become the order's
    error = intent.get("last_payment_error") or {}
    changed = facts.record_ids(order, payment_intent=intent["id"])
    return changed | facts.record_failure(
        order,
        attempt=attempt,
        code=error.get("decline_code") or error.get("code") or "payment_failed",
        message=error.get("message") or "The payment failed.",
        created=int(event.get("created") or 0),
        source=event["id"],
    )


def _on_charge(order: Order, charge: dict[str, Any], event: dict[str, Any]) -> bool:
    return facts.record_charge(order, charge, source=event["id"])


def _on_refund(order: Order, refund: dict[str, Any], event: dict[str, Any]) -> bool:
    return facts.record_refund(order, refund, source=event["id"])


def _on_dispute(order: Order, dispute: dict[str, Any], event: dict[str, Any]) -> bool:
    return facts.record_dispute(order, dispute, event_type=event["type"], source=event["id"])


HANDLERS: dict[str, Callable[[Order, dict[str, Any], dict[str, Any]], bool]] = {
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
