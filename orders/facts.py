"""Payment facts: each function merges what one Stripe object says into the order's record.

Every merge is commutative and idempotent (set once, keep the max, move forward only), so any
order and any repetition of events leaves the same facts; `transitions.sync_status` then derives
the status from them. Callers hold the order's row lock and save the order once afterwards
(`webhooks.apply_facts` does both). Each function returns whether anything changed and sends
the matching signal only then.
"""

from datetime import UTC, datetime
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from .models import Dispute, Order, Refund
from .signals import dispute_changed, payment_completed, payment_failed, refund_changed

# The Order fields these functions write; `apply_facts` saves exactly these.
FACT_FIELDS = [
    "paid_at",
    "paid_source",
    "payment_method",
    "async_payment_pending",
    "failure_code",
    "failure_message",
    "failure_event_created",
    "charge_amount_refunded_cents",
    "refunds_succeeded_cents",
    "disputes_summary",
    "open_dispute_reason",
    "amount_total_cents",
    "stripe_payment_intent_id",
    "stripe_charge_id",
    "updated_at",
]


def attempt_of(obj: dict[str, Any]) -> int | None:
    value = (obj.get("metadata") or {}).get("attempt")
    return int(value) if str(value or "").isdigit() else None


def _describe_method(charge: dict[str, Any]) -> str:
    details = charge.get("payment_method_details") or {}
    kind = details.get("type") or ""
    info = details.get(kind) or {}
    label = " ".join(filter(None, [info.get("brand"), kind.replace("_", " ")]))
    return f"{label} •••• {info['last4']}" if info.get("last4") else label


def mark_paid(order: Order, *, source: str) -> bool:
    if order.is_paid:
        return False
    order.paid_at = timezone.now()
    order.paid_source = source[:255]
    order.async_payment_pending = False
    payment_completed.send(sender=Order, order=order, source=source)
    return True


def record_ids(order: Order, *, payment_intent: str = "", charge: str = "") -> bool:
    """Keep the first PaymentIntent and charge ids we learn; refunds and disputes find orders by them."""
    changed = False
    if payment_intent and not order.stripe_payment_intent_id:
        order.stripe_payment_intent_id, changed = payment_intent, True
    if charge and not order.stripe_charge_id:
        order.stripe_charge_id, changed = charge, True
    return changed


def record_session(order: Order, session: dict[str, Any], *, source: str) -> bool:
    """checkout.session.completed / async_payment_succeeded, or a session the success page fetched."""
    paid = session.get("payment_status") in ("paid", "no_payment_required")
    current = attempt_of(session) in (None, order.attempt)
    if not paid and not current:
        return False  # an old attempt's unpaid session says nothing about the current one
    pi = session.get("payment_intent")
    charge = pi.get("latest_charge") if isinstance(pi, dict) else None
    pi_id = pi.get("id") if isinstance(pi, dict) else pi
    changed = False
    if paid and pi_id and not order.is_paid and order.stripe_payment_intent_id != pi_id:
        # Money taken always wins: the paying attempt's ids are the ones refunds will name.
        order.stripe_payment_intent_id, order.stripe_charge_id, changed = pi_id, "", True
    if order.amount_total_cents is None and session.get("amount_total") is not None:
        order.amount_total_cents, changed = session["amount_total"], True
    if isinstance(charge, dict):
        changed |= _record_charge_details(order, charge)
    waiting = not (paid or order.is_paid or order.failure_code or order.async_payment_pending)
    if waiting and session.get("status") == "complete":
        order.async_payment_pending, changed = True, True  # a bank debit is on its way
    changed |= record_ids(order, payment_intent=pi_id or "")
    return mark_paid(order, source=source) | changed if paid else changed


def record_failure(
    order: Order, *, attempt: int | None, code: str, message: str, created: int, source: str
) -> bool:
    """The latest failure of the current attempt; ignored once paid."""
    if order.is_paid or attempt not in (None, order.attempt):
        return False
    if order.failure_event_created is not None and created < order.failure_event_created:
        return False
    order.failure_code = code[:100]
    order.failure_message = message[:500]
    order.failure_event_created = created
    order.async_payment_pending = False
    payment_failed.send(sender=Order, order=order, code=code, message=message, source=source)
    return True


def _record_charge_details(order: Order, charge: dict[str, Any]) -> bool:
    changed = False
    method = _describe_method(charge)
    if method and order.payment_method != method:
        order.payment_method, changed = method[:100], True
    if charge.get("id") and not order.stripe_charge_id:
        order.stripe_charge_id, changed = charge["id"], True
    if order.amount_total_cents is None and charge.get("amount") is not None:
        order.amount_total_cents, changed = charge["amount"], True
    return changed


def record_charge(order: Order, charge: dict[str, Any], *, source: str) -> bool:
    """charge.refunded: the charge's refunded total only grows; embedded refunds are recorded too."""
    changed = _record_charge_details(order, charge)
    refunded = charge.get("amount_refunded") or 0
    if refunded > order.charge_amount_refunded_cents:
        order.charge_amount_refunded_cents, changed = refunded, True
    for refund in (charge.get("refunds") or {}).get("data") or []:
        changed |= record_refund(order, refund, source=source)
    return mark_paid(order, source=source) | changed


def record_refund(
    order: Order,
    refund: dict[str, Any],
    *,
    source: str,
    requested_by=None,
    sequence: int | None = None,
    reason: str = "",
) -> bool:
    row, created = Refund.objects.get_or_create(
        stripe_refund_id=refund["id"],
        defaults={
            "order": order,
            "amount_cents": refund["amount"],
            "currency": refund.get("currency") or order.currency,
            "status": refund["status"],
            "reason": reason or (refund.get("metadata") or {}).get("reason") or "",
            "failure_reason": refund.get("failure_reason") or "",
            "requested_by": requested_by,
            "sequence": sequence,
        },
    )
    if sequence and row.sequence is None:
        row.sequence, row.requested_by, row.reason = sequence, requested_by, reason or row.reason
        row.save(update_fields=["sequence", "requested_by", "reason", "updated_at"])
    moved = not created and Refund.RANK[refund["status"]] > Refund.RANK[row.status]
    if moved:
        row.status = refund["status"]
        row.failure_reason = refund.get("failure_reason") or ""
        row.save(update_fields=["status", "failure_reason", "updated_at"])
    if created or moved:
        succeeded = order.refunds.filter(status=Refund.State.SUCCEEDED).aggregate(
            s=Sum("amount_cents")
        )
        order.refunds_succeeded_cents = succeeded["s"] or 0
        refund_changed.send(sender=Order, order=order, refund=row, created=created)
    implied = refund["status"] != "failed" and mark_paid(order, source=source)
    return created or moved or implied


def record_dispute(order: Order, dispute: dict[str, Any], *, event_type: str, source: str) -> bool:
    due = (dispute.get("evidence_details") or {}).get("due_by")
    row, created = Dispute.objects.get_or_create(
        stripe_dispute_id=dispute["id"],
        defaults={
            "order": order,
            "amount_cents": dispute["amount"],
            "currency": dispute.get("currency") or order.currency,
            "status": dispute["status"],
            "reason": dispute.get("reason") or "",
            "evidence_due_by": datetime.fromtimestamp(due, UTC) if due else None,
        },
    )
    fields = []
    if not created and Dispute.RANK.get(dispute["status"], 0) > Dispute.RANK.get(row.status, 0):
        row.status = dispute["status"]
        fields.append("status")
    if event_type.endswith("funds_withdrawn") and not row.funds_withdrawn:
        row.funds_withdrawn = True
        fields.append("funds_withdrawn")
    if event_type.endswith("funds_reinstated") and not row.funds_reinstated:
        row.funds_reinstated = True
        fields.append("funds_reinstated")
    if fields:
        row.save(update_fields=[*fields, "updated_at"])
    if created or "status" in fields:
        _summarise_disputes(order)
        dispute_changed.send(sender=Order, order=order, dispute=row, created=created)
    return (
        bool(created or fields)
        | record_ids(order, charge=dispute.get("charge") or "")
        | mark_paid(order, source=source)
    )


def _summarise_disputes(order: Order) -> None:
    disputes = list(order.disputes.order_by("created_at", "id"))
    open_reasons = [d.reason for d in disputes if d.is_open]
    lost = any(d.status == "lost" for d in disputes)
    order.disputes_summary = "lost" if lost else ("open" if open_reasons else "")
    order.open_dispute_reason = open_reasons[0] if open_reasons else ""
