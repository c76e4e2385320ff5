"""Stripe webhooks: verify the signature over the raw body, store each event once, dispatch it.

`receive()` is the whole path for a delivered body (the view and the offline gateway's delivery
call it). `handle_stripe_event()` is the part after verification, shared with
`stripe_replay_events`. What an event means for its order is in `stripe_events`; applying it is
`updates.update_order`.
"""

import hashlib
import hmac
import json
import logging
import time
from typing import Any

import stripe
from django.conf import settings
from django.db import transaction

from shop.rows import insert_unless_taken, update

from .event_shapes import MalformedEvent, check_object
from .gateways import livemode_expected
from .models import Order, StripeEvent
from .stripe_events import HANDLERS, locate_order, references
from .updates import lock_references, update_order

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
        event = json.loads(payload, parse_constant=_refuse_constant)
    except stripe.SignatureVerificationError as error:
        raise WebhookError(f"bad signature: {error.user_message}") from None
    except NotJSON as error:
        raise WebhookError(f"malformed event: {error}") from None
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: absurdly deep JSON
        raise WebhookError("body is not JSON") from None
    if "\\u0000" in payload and _holds_nul(event):
        # PostgreSQL stores no NUL in text or JSON: refused in words (Stripe never sends one),
        # rather than a 500 on every retry.
        raise WebhookError("body holds a NUL character (\\u0000)")
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
    try:
        check_object(event["type"], event["data"]["object"])
    except MalformedEvent as error:
        raise WebhookError(f"malformed event: {error}") from None
    return event


class NotJSON(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    """Python's json reads NaN, Infinity and -Infinity; JSON (and Stripe) has no such numbers,
    and PostgreSQL's jsonb refuses them: a 400 rather than a 500 on every retry."""
    raise NotJSON(f"{name} is not a JSON number")


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


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
            _log_event(event["id"], event["type"], "duplicate")
            return StripeEvent.objects.get(id=event["id"])
        outcome, order, detail = _dispatch(event, record)
        record.outcome, record.order, record.detail = outcome, order, detail[:500]
        _save_outcome(record)
    _log_event(record.id, record.type, str(outcome), detail)
    return record


def _log_event(event_id: str, event_type: str, outcome: str, detail: str = "") -> None:
    """One line per delivered event. `detail` is the shop's own words (a transition), never
    anything from the payload, which holds the customer's email."""
    log.info(
        "stripe event %s %s: %s %s",
        event_id,
        event_type,
        outcome,
        detail,
        extra={"event_id": event_id, "event_type": event_type, "outcome": outcome},
    )


def _store_once(event: dict[str, Any]) -> StripeEvent | None:
    """Insert the event unless its id is stored already (then None). One statement, no savepoint:
    a concurrent delivery of the same id waits for the first to commit, then inserts nothing."""
    version = str(event.get("api_version") or "")[:40]
    if version and version != settings.STRIPE_API_VERSION:
        # Processed all the same (stripe listen and replays of old events send older versions);
        # the fields the handlers read are the same across them.
        log.warning(
            "stripe event %s has api_version %s, the shop pins %s",
            event["id"],
            version,
            settings.STRIPE_API_VERSION,
        )
    record = StripeEvent(
        id=event["id"],
        type=event["type"],
        livemode=bool(event.get("livemode")),
        created=int(event.get("created") or time.time()),
        api_version=version,
        payload=event,
        outcome=Outcome.NO_CHANGE,
    )
    return record if insert_unless_taken(record, "id") else None


def _save_outcome(record: StripeEvent) -> None:
    fields = ("outcome", "order_id", "detail", "payment_intent_id", "charge_id")
    update(StripeEvent, {name: getattr(record, name) for name in fields}, pk=record.pk)


def _dispatch(event: dict[str, Any], record: StripeEvent) -> tuple[str, Order | None, str]:
    handler = HANDLERS.get(event["type"])
    if handler is None:
        return Outcome.UNHANDLED, None, ""
    if record.livemode != livemode_expected():
        return Outcome.LIVEMODE_MISMATCH, None, f"livemode={record.livemode}"
    obj = event["data"]["object"]
    payment_intent, charge = references(obj)
    # One key per event, its PaymentIntent when it names one: an event holding two could wait
    # for one held by a transaction that is waiting for the other (a deadlock).
    lock_references(payment_intent or charge)
    order = locate_order(obj)
    if order is None:
        record.payment_intent_id, record.charge_id = payment_intent, charge
        return Outcome.UNKNOWN_ORDER, None, "no order matches this event yet"
    update = update_order(
        order, lambda changes: handler(order, obj, event, changes), source=event["id"]
    )
    if update.refused:
        return Outcome.PAYMENT_MISMATCH, order, update.refused
    if not (update.changed or update.transition):
        return Outcome.NO_CHANGE, order, ""
    detail = str(update.transition) if update.transition else "facts recorded"
    return Outcome.APPLIED, order, detail
