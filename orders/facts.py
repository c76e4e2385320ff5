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
from .payment_methods import describe_payment_method
from .signals import dispute_changed, payment_completed, payment_failed, refund_changed

# A session that expired or whose delayed payment failed has ended: nothing but money overrides it.
# A declined card only fails one try within a session.
FINAL_FAILURES = {"async_payment_failed", "expired"}

# The Order fields these functions write; `apply_facts` saves exactly these.
FACT_FIELDS = [
    "paid_at",
    "paid_source",
    "payment_method",
    "async_payment_pending",
    "failure_code",
    "failure_message",
    "failure_event_created",
    "failure_source",
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
    total = session.get("amount_total")
    # What the paying session charged wins over an earlier unpaid attempt's total.
    if total is not None and (order.amount_total_cents is None or (paid and not order.is_paid)):
        changed |= order.amount_total_cents != total
        order.amount_total_cents = total
    if isinstance(charge, dict):
        changed |= _record_charge_details(order, charge)
    if not paid and session.get("status") == "complete":
        changed |= _payment_in_flight(order)
    changed |= record_ids(order, payment_intent=pi_id or "")
    return mark_paid(order, source=source) | changed if paid else changed


def _payment_in_flight(order: Order) -> bool:
    """A session completed unpaid (a bank debit is on its way). Its declines came before it, so
    they no longer count; a failure that ended the session still does."""
    if order.is_paid or order.async_payment_pending or order.failure_code in FINAL_FAILURES:
        return False
    order.async_payment_pending = True
    order.failure_code = order.failure_message = order.failure_source = ""
    order.failure_event_created = None
    return True


def record_failure(
    order: Order, *, attempt: int | None, code: str, message: str, created: int, source: str
) -> bool:
    """The failure of the current attempt: a final one (the session expired or its delayed
    payment failed) over a decline, else the latest by (created, event id). Ignored once paid,
    and a decline is ignored once the session completed with a payment in flight."""
    if order.is_paid or attempt not in (None, order.attempt):
        return False
    final, kept_final = code in FINAL_FAILURES, order.failure_code in FINAL_FAILURES
    if not final and (order.async_payment_pending or kept_final):
        return False
    newer = order.failure_event_created is None or (created, source) > (
        order.failure_event_created,
        order.failure_source,
    )
    if not (newer or (final and not kept_final)):
        return False
    order.failure_code = code[:100]
    order.failure_message = message[:500]
    order.failure_event_created = created
    order.failure_source = source[:255]
    order.async_payment_pending = False
    payment_failed.send(sender=Order, order=order, code=code, message=message, source=source)
    return True


def _record_charge_details(order: Order, charge: dict[str, Any]) -> bool:
    changed = False
    method = describe_payment_method(charge.get("payment_method_details"))
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
    succeeded = refund["status"] == Refund.State.SUCCEEDED
    row, created = Refund.objects.get_or_create(
        stripe_refund_id=refund["id"],
        defaults={
            "order": order,
            "amount_cents": refund["amount"],
            "currency": refund.get("currency") or order.currency,
            "status": refund["status"],
            "succeeded_once": succeeded,
            "reason": reason or (refund.get("metadata") or {}).get("reason") or "",
            "failure_reason": refund.get("failure_reason") or "",
            "requested_by": requested_by,
            "sequence": sequence,
        },
    )
    fields = []
    if sequence and row.sequence is None:
        row.sequence, row.requested_by, row.reason = sequence, requested_by, reason or row.reason
        fields += ["sequence", "requested_by", "reason"]
    moved = not created and Refund.RANK[refund["status"]] > Refund.RANK[row.status]
    if moved:
        row.status = refund["status"]
        row.failure_reason = refund.get("failure_reason") or ""
        fields += ["status", "failure_reason"]
    # Seen succeeded once, a refund counts for good, whichever of its events comes first.
    newly_succeeded = succeeded and (created or not row.succeeded_once)
    if newly_succeeded and not created:
        row.succeeded_once = True
        fields.append("succeeded_once")
    if fields:
        row.save(update_fields=[*fields, "updated_at"])
    if newly_succeeded:
        total = order.refunds.filter(succeeded_once=True).aggregate(s=Sum("amount_cents"))["s"]
        order.refunds_succeeded_cents = total or 0
    if created or moved or newly_succeeded:
        refund_changed.send(
            sender=Order, order=order, refund=row, created=created, newly_succeeded=newly_succeeded
        )
    implied = refund["status"] != "failed" and mark_paid(order, source=source)
    return created or moved or newly_succeeded or implied


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
