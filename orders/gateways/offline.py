"""The offline test gateway: Stripe's part played locally, as Saleor's dummy gateway does.

Objects live in `OfflineObject`; every action emits Stripe-shaped events into `OfflineEvent`.
`orders.offline_events` signs them with STRIPE_WEBHOOK_SECRET and hands them to the real webhook
verification and handler: immediately after the action commits (on `events_emitted`) or, for
delayed payment methods, when the `deliver_test_events` worker finds them due.
"""

import secrets
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.dispatch import Signal
from django.urls import reverse
from django.utils import timezone

from ..models import OfflineEvent, OfflineObject
from . import REFUSED_REFUNDS, GatewayError, LineItem

# Events were emitted for delivery now (after the emitting transaction commits).
events_emitted = Signal()

DECLINES = {
    "card_declined": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
}


def _id(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}"


def _save(obj: dict[str, Any], kind: str, idempotency_key: str | None = None) -> dict[str, Any]:
    OfflineObject.objects.update_or_create(
        id=obj["id"], defaults={"kind": kind, "data": obj, "idempotency_key": idempotency_key}
    )
    return obj


def _get(object_id: str, kind: str, *, lock: bool = False) -> dict[str, Any]:
    rows = OfflineObject.objects.select_for_update() if lock else OfflineObject.objects
    row = rows.filter(id=object_id, kind=kind).first()
    if row is None:
        raise GatewayError(f"No such {kind}.", code="resource_missing")
    return row.data


def emit(event_type: str, obj: dict[str, Any], *, delay: float = 0) -> OfflineEvent:
    event = OfflineEvent.objects.create(
        id=_id("evt"),
        type=event_type,
        payload={
            "object": "event",
            "api_version": settings.STRIPE_API_VERSION,
            "created": int(time.time() + delay),
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
            "data": {"object": obj},
        },
        deliver_after=timezone.now() + timedelta(seconds=delay),
    )
    event.payload["id"] = event.id
    event.save(update_fields=["payload"])
    if not delay:
        transaction.on_commit(lambda: events_emitted.send(sender=OfflineEvent))
    return event


def record_delivered(event: OfflineEvent) -> None:
    """The webhook took `event`: a session's state is what its last delivered event says."""
    if event.type.startswith("checkout.session."):
        _save(event.payload["data"]["object"], "session")
    event.delivered_at = timezone.now()
    event.save(update_fields=["delivered_at"])


def _charged_back(payment_intent: str) -> bool:
    """A chargeback open or lost holds the money (Stripe refuses a refund: charge_disputed);
    an inquiry (warning_*) or a won one does not."""
    disputes = OfflineObject.objects.filter(kind="dispute", data__payment_intent=payment_intent)
    return any(
        not d.data["status"].startswith("warning_") and d.data["status"] != "won" for d in disputes
    )


def _charge_for(session: dict[str, Any], method: str) -> dict[str, Any]:
    details = (
        {"type": "card", "card": {"brand": "visa", "last4": "4242"}}
        if method == "card"
        else {"type": "sepa_debit", "sepa_debit": {"last4": "3000"}}
    )
    return _save(
        {
            "id": _id("ch"),
            "object": "charge",
            "amount": session["amount_total"],
            "amount_refunded": 0,
            "currency": session["currency"],
            "payment_intent": session["payment_intent"],
            "paid": True,
            "refunded": False,
            "status": "succeeded",
            "payment_method_details": details,
            "metadata": {},
        },
        "charge",
    )


# TEST MODE's promotion codes (STRIPE_ALLOW_PROMOTION_CODES), as percent off the items, and its
# tax rate (STRIPE_AUTOMATIC_TAX), on what is left after the discount, as Stripe Tax applies it.
TEST_PROMOTION_CODES = {"TEST10": 10}
TEST_TAX_PERCENT = 20


def _with_totals(session: dict[str, Any], discount: int) -> dict[str, Any]:
    """The session's discount, tax and total from its items' subtotal, as Stripe reports them."""
    subtotal = session["amount_subtotal"]
    automatic = (session.get("automatic_tax") or {}).get("enabled")
    tax = round((subtotal - discount) * TEST_TAX_PERCENT / 100) if automatic else 0
    return {
        **session,
        "amount_total": subtotal - discount + tax,
        "total_details": {"amount_discount": discount, "amount_shipping": 0, "amount_tax": tax},
    }


class OfflineGateway:
    livemode = False

    def create_session(
        self,
        *,
        order_id: str,
        attempt: int,
        email: str,
        currency: str,
        items: list[LineItem],
        success_url: str,
        cancel_url: str,
        expires_at: int,
    ) -> dict[str, Any]:
        session_id = _id("cs")
        total = sum(item.unit_amount * item.quantity for item in items)
        now = int(time.time())
        session = _with_totals(
            {
                "id": session_id,
                "object": "checkout.session",
                "mode": "payment",
                "status": "open",
                "payment_status": "unpaid",
                "amount_subtotal": total,
                "amount_total": total,
                "currency": currency,
                "client_reference_id": order_id,
                "customer_email": email,
                "customer_details": {"email": email},
                "metadata": {"order_id": order_id, "attempt": str(attempt)},
                "line_items": [vars(item) for item in items],
                "payment_intent": _id("pi"),
                "payment_method_types": ["card", "sepa_debit"],
                "livemode": False,
                "created": now,
                "expires_at": expires_at,
                "success_url": success_url,
                "cancel_url": cancel_url,
                "url": settings.SITE_URL + reverse("orders:test_checkout", args=[session_id]),
                "allow_promotion_codes": settings.STRIPE_ALLOW_PROMOTION_CODES,
                "automatic_tax": {"enabled": settings.STRIPE_AUTOMATIC_TAX},
            },
            discount=0,
        )
        return _save(session, "session")

    @transaction.atomic
    def apply_promotion_code(self, session_id: str, code: str) -> dict[str, Any]:
        """The buyer types a promotion code on the TEST MODE page (TEST10: 10% off), as on
        Stripe's page when the session allows codes."""
        session = _get(session_id, "session", lock=True)
        if session["status"] != "open":
            raise GatewayError("This checkout session is no longer open.", code="session_not_open")
        if not session.get("allow_promotion_codes"):
            raise GatewayError("This checkout takes no promotion codes.", code="no_codes")
        percent = TEST_PROMOTION_CODES.get(code.strip().upper())
        if percent is None:
            raise GatewayError("This code is invalid.", code="promotion_code_invalid")
        discount = round(session["amount_subtotal"] * percent / 100)
        return _save(_with_totals(session, discount), "session")

    def retrieve_session(self, session_id: str) -> dict[str, Any]:
        session = _get(session_id, "session")
        charge_id = session.get("latest_charge")
        if charge_id:
            session["payment_intent"] = {
                "id": session["payment_intent"],
                "latest_charge": _get(charge_id, "charge"),
            }
        return session

    def expire_overdue(self) -> int:
        """Expire the open sessions past their `expires_at`, as Stripe does on its own (each
        emits checkout.session.expired); returns how many."""
        now = int(time.time())
        overdue = OfflineObject.objects.filter(
            kind="session", data__status="open", data__expires_at__lte=now
        ).values_list("id", flat=True)
        expired = 0
        for session_id in list(overdue):
            try:
                self.expire_session(session_id)
            except GatewayError:  # paid or expired meanwhile
                continue
            expired += 1
        return expired

    @transaction.atomic
    def expire_session(self, session_id: str) -> None:
        session = _get(session_id, "session", lock=True)
        if session["status"] != "open":
            raise GatewayError("Only an open session can be expired.", code="session_not_open")
        _save({**session, "status": "expired"}, "session")
        emit("checkout.session.expired", {**session, "status": "expired"})

    @transaction.atomic
    def create_refund(
        self,
        *,
        payment_intent: str,
        amount: int,
        idempotency_key: str,
        metadata: dict[str, str],
        reason: str = "requested_by_customer",
    ) -> dict[str, Any]:
        # The charge's lock makes refunds of one charge (and one Idempotency-Key) take turns.
        charge = (
            OfflineObject.objects.select_for_update()
            .filter(kind="charge", data__payment_intent=payment_intent)
            .first()
        )
        existing = OfflineObject.objects.filter(idempotency_key=idempotency_key).first()
        if existing:
            return existing.data
        if charge is None:
            raise GatewayError("This payment has no charge to refund.", code="charge_missing")
        charge = charge.data
        if _charged_back(payment_intent):
            raise GatewayError(REFUSED_REFUNDS["charge_disputed"], code="charge_disputed")
        if amount > charge["amount"] - charge["amount_refunded"]:
            raise GatewayError(REFUSED_REFUNDS["amount_too_large"], code="amount_too_large")
        refund = _save(
            {
                "id": _id("re"),
                "object": "refund",
                "amount": amount,
                "currency": charge["currency"],
                "charge": charge["id"],
                "payment_intent": payment_intent,
                "status": "succeeded",
                "reason": reason,
                "metadata": metadata,
                "created": int(time.time()),
            },
            "refund",
            idempotency_key,
        )
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        _save(charge, "charge")
        emit("refund.created", refund)
        emit("charge.refunded", charge)
        return refund

    def list_events(self, *, created_gte: int, delivery_success: bool | None = None):
        # A delayed payment's event is not due yet: on Stripe it would not exist yet either.
        events = OfflineEvent.objects.filter(
            payload__created__gte=created_gte, deliver_after__lte=timezone.now()
        )
        if delivery_success is not None:
            events = events.filter(delivered_at__isnull=not delivery_success)
        for event in events.order_by("deliver_after", "id"):
            yield event.payload

    # What the buyer does on the TEST MODE checkout page.

    @transaction.atomic
    def pay(self, session_id: str, *, method: str = "card", outcome: str = "succeeded") -> None:
        session = _get(session_id, "session", lock=True)
        if session["status"] != "open":
            raise GatewayError("This checkout session is no longer open.", code="session_not_open")
        charge = _charge_for(session, method)
        paid = {**session, "status": "complete", "latest_charge": charge["id"]}
        first = {**paid, "payment_status": "paid" if method == "card" else "unpaid"}
        emit("checkout.session.completed", _save(first, "session"))
        if method == "card":
            return
        later = "async_payment_succeeded" if outcome == "succeeded" else "async_payment_failed"
        emit(
            f"checkout.session.{later}",
            {**paid, "payment_status": "paid" if outcome == "succeeded" else "unpaid"},
            delay=settings.TEST_GATEWAY_DELAY,
        )

    @transaction.atomic
    def decline(self, session_id: str, *, code: str = "card_declined") -> None:
        session = _get(session_id, "session", lock=True)
        if session["status"] != "open":
            raise GatewayError("This checkout session is no longer open.", code="session_not_open")
        emit(
            "payment_intent.payment_failed",
            {
                "id": session["payment_intent"],
                "object": "payment_intent",
                "amount": session["amount_total"],
                "currency": session["currency"],
                "metadata": session["metadata"],
                "status": "requires_payment_method",
                "last_payment_error": {
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": code,
                    "message": DECLINES.get(code, DECLINES["card_declined"]),
                },
            },
        )

    # What staff may do in test mode only.

    def _charge(self, payment_intent: str, *, to: str) -> dict[str, Any]:
        """The payment's charge, to dispute or to check (Radar): GatewayError when it has none."""
        row = OfflineObject.objects.filter(kind="charge", data__payment_intent=payment_intent)
        charge = row.first()
        if charge is None:
            raise GatewayError(f"This payment has no charge to {to}.", code="charge_missing")
        return charge.data

    @transaction.atomic
    def raise_fraud_warning(
        self, payment_intent: str, *, fraud_type: str = "made_with_stolen_card"
    ) -> dict[str, Any]:
        """Radar's early fraud warning on the payment's charge, actionable (Stripe's word) while
        the charge is neither charged back nor refunded in full."""
        charge = self._charge(payment_intent, to="check")
        warning = _save(
            {
                "id": _id("issfr"),
                "object": "radar.early_fraud_warning",
                "actionable": not (charge["refunded"] or _charged_back(payment_intent)),
                "charge": charge["id"],
                "payment_intent": payment_intent,
                "fraud_type": fraud_type,
                "created": int(time.time()),
                "livemode": False,
            },
            "early_fraud_warning",
        )
        emit("radar.early_fraud_warning.created", warning)
        return warning

    @transaction.atomic
    def open_review(self, payment_intent: str) -> dict[str, Any]:
        """Radar puts the payment in review, as a person does from the Dashboard."""
        charge = self._charge(payment_intent, to="check")
        review = _save(
            {
                "id": _id("prv"),
                "object": "review",
                "charge": charge["id"],
                "payment_intent": payment_intent,
                "open": True,
                "opened_reason": "manual",
                "reason": "manual",
                "closed_reason": None,
                "created": int(time.time()),
                "livemode": False,
            },
            "review",
        )
        emit("review.opened", review)
        return review

    @transaction.atomic
    def close_review(self, review_id: str, *, closed_reason: str = "approved") -> dict[str, Any]:
        review = _get(review_id, "review", lock=True)
        if not review["open"]:
            raise GatewayError("This review is already closed.", code="review_closed")
        review = _save(
            {**review, "open": False, "reason": closed_reason, "closed_reason": closed_reason},
            "review",
        )
        emit("review.closed", review)
        return review

    @transaction.atomic
    def open_dispute(self, payment_intent: str, *, reason: str = "fraudulent") -> dict[str, Any]:
        charge = self._charge(payment_intent, to="dispute")
        dispute = _save(
            {
                "id": _id("dp"),
                "object": "dispute",
                "amount": charge["amount"],
                "currency": charge["currency"],
                "charge": charge["id"],
                "payment_intent": payment_intent,
                "reason": reason,
                "status": "needs_response",
                "evidence_details": {"due_by": int(time.time()) + 7 * 24 * 3600},
                "created": int(time.time()),
            },
            "dispute",
        )
        emit("charge.dispute.created", dispute)
        emit("charge.dispute.funds_withdrawn", dispute)
        return dispute

    @transaction.atomic
    def close_dispute(self, dispute_id: str, *, won: bool) -> dict[str, Any]:
        dispute = _get(dispute_id, "dispute")
        if dispute["status"] in ("won", "lost"):
            raise GatewayError("This dispute is already closed.", code="dispute_closed")
        dispute = _save({**dispute, "status": "won" if won else "lost"}, "dispute")
        emit("charge.dispute.closed", dispute)
        if won:
            emit("charge.dispute.funds_reinstated", dispute)
        return dispute
