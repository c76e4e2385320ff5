"""Payment facts: each function merges what one Stripe object says into the order's record.

Every merge is commutative and idempotent (set once, keep the max, move forward only), so any
order and any repetition of events leaves the same facts; `transitions.sync_status` then derives
the status from them. The functions only merge: they note what really changed in `Changes`, and
`updates.update_order` saves, derives the status and tells the other apps afterwards, with the
final facts. Callers hold the order's row lock.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from shop.money import format_money as money
from shop.rows import insert_unless_taken

from . import disputes, statements
from .amounts import PENDING_REFUNDS, UNDONE_REFUNDS
from .models import CheckoutSession, Dispute, FraudWarning, Order, PaymentMismatch, Refund, Review
from .payment_methods import describe_payment_method

# A session that expired or whose delayed payment failed has ended: nothing but money overrides it.
# A declined card only fails one try within a session.
FINAL_FAILURES = {"async_payment_failed", "expired"}
PAID = ("paid", "no_payment_required")

# The Order fields these functions write; `update_order` saves exactly these.
FACT_FIELDS = [
    "paid_at",
    "paid_source",
    "payment_method",
    "customer_name",
    "async_payment_pending",
    "failure_code",
    "failure_message",
    "failure_event_created",
    "failure_source",
    "charge_amount_refunded_cents",
    "refunds_succeeded_cents",
    "chargebacks_cents",
    "dispute_fees_cents",
    "disputes_summary",
    "open_dispute_reason",
    "refund_failed_at",
    "amount_total_cents",
    "discount_cents",
    "tax_cents",
    "fraud_type",
    "fraud_actionable",
    "review_hold",
    "stripe_payment_intent_id",
    "stripe_charge_id",
    "stripe_invoice_id",
    "invoice_links_for",
    "invoice_url",
    "invoice_pdf_url",
    "updated_at",
]


@dataclass
class Changes:
    """What a merge really changed, for the signals sent once the order is saved."""

    touched: bool = False  # any fact changed: the order must be saved
    paid: bool = False
    failure: tuple[str, str] | None = None  # (code, message)
    counted_refunds: list[Refund] = field(default_factory=list)  # now count as money returned
    undone_refunds: list[Refund] = field(default_factory=list)  # failed or canceled
    pending_refunds: list[Refund] = field(default_factory=list)  # first seen pending
    # (refund, counted now): its chosen licenses go (refund by seat)
    seat_refunds: list[tuple[Refund, bool]] = field(default_factory=list)
    disputes: list[tuple[Dispute, str]] = field(default_factory=list)  # (dispute, what happened)
    fraud_warnings: list[FraudWarning] = field(default_factory=list)  # first seen
    # (review, what happened: "opened", "closed", or "seen_closed" when first seen closed)
    reviews: list[tuple[Review, str]] = field(default_factory=list)
    refused: str = ""  # why the object may not change this order (a payment not for it)
    mismatch: PaymentMismatch | None = None  # newly recorded: staff are told

    def mark(self, changed: bool = True) -> bool:
        self.touched |= changed
        return changed


def attempt_of(obj: dict[str, Any]) -> int | None:
    value = (obj.get("metadata") or {}).get("attempt")
    return int(value) if str(value or "").isdigit() else None


def id_of(value: Any) -> str:
    """A Stripe reference, expanded (an object) or not (its id)."""
    return str((value.get("id") if isinstance(value, dict) else value) or "")


def mark_paid(order: Order, changes: Changes, *, source: str) -> None:
    if order.is_paid:
        return
    order.paid_at = timezone.now()
    order.paid_source = source[:255]
    order.async_payment_pending = False
    changes.paid = changes.mark()


def record_ids(
    order: Order, changes: Changes, *, payment_intent: str = "", charge: str = ""
) -> None:
    """Keep the first PaymentIntent and charge ids we learn; refunds and disputes find orders by them."""
    if payment_intent and not order.stripe_payment_intent_id:
        order.stripe_payment_intent_id = payment_intent
        changes.mark()
    if charge and not order.stripe_charge_id:
        order.stripe_charge_id = charge
        changes.mark()


def session_problem(order: Order, session: dict[str, Any]) -> str:
    """Why `session` may not pay `order`, in words for staff; "" when it may.

    Only a session the shop created for this order may (CheckoutSession): a Payment Link, a
    pricing table or another integration on the same Stripe account can put any order's id in
    `client_reference_id` or metadata. A session that says money moved must be in the currency
    asked for, its items must come to what was asked, and it must have taken at least that less
    the discount Stripe reports (taxes and shipping only add to it)."""
    asked = (
        CheckoutSession.objects.filter(stripe_session_id=session.get("id") or "", order=order)
        .only("amount_cents", "currency")
        .first()
    )
    if asked is None:
        return "This Checkout Session was not created by the shop for this order."
    if not _money_moved(session):
        return ""
    currency, total, subtotal = charged_in_order_currency(session)
    want = money(asked.amount_cents, asked.currency)
    if currency != asked.currency:
        return f"Paid in {currency.upper() or 'no currency'}; the order asked for {want}."
    if subtotal is not None and subtotal != asked.amount_cents:
        return (
            f"The session's items come to {money(subtotal, currency)}; the order asked for {want}."
        )
    discount, _ = discount_and_tax(session)
    if total is not None and total + discount < asked.amount_cents:
        return f"Paid {money(total, currency)}, less than the {want} asked for."
    return ""


def _money_moved(session: dict[str, Any]) -> bool:
    """Paid, or completed with a bank debit on its way."""
    return session.get("payment_status") in PAID or session.get("status") == "complete"


def charged_in_order_currency(session: dict[str, Any]) -> tuple[str, int | None, int | None]:
    """(currency, amount_total, amount_subtotal) in the currency the shop priced in. Adaptive
    Pricing sessions created before API 2025-03-31 carry the buyer's currency at the top and the
    shop's in `currency_conversion`."""
    conversion = session.get("currency_conversion")
    if isinstance(conversion, dict) and conversion.get("source_currency"):
        source = conversion
        currency = conversion["source_currency"]
    else:
        source, currency = session, session.get("currency")
    return str(currency or "").lower(), source.get("amount_total"), source.get("amount_subtotal")


def discount_and_tax(session: dict[str, Any]) -> tuple[int, int]:
    """(discount, tax) of `session`'s `total_details`, in the currency the shop priced in. An
    Adaptive Pricing session before API 2025-03-31 tells them in the buyer's currency only: they
    are brought back by the ratio of its two subtotals (each in its own minor units)."""
    details = session.get("total_details") or {}
    discount, tax = details.get("amount_discount") or 0, details.get("amount_tax") or 0
    conversion = session.get("currency_conversion")
    if isinstance(conversion, dict) and conversion.get("source_currency"):
        theirs, ours = session.get("amount_subtotal"), conversion.get("amount_subtotal")
        if not theirs or ours is None:
            return 0, 0
        # Integers throughout (rounded half up): floats lose cents on twelve-digit amounts.
        return (discount * ours + theirs // 2) // theirs, (tax * ours + theirs // 2) // theirs
    return discount, tax


def _refuse_session(
    order: Order, session: dict[str, Any], changes: Changes, *, problem: str, source: str
) -> None:
    """Keep a session that named this order without the right to pay it: once per session,
    when it says money moved (staff must look at it); the order itself is not touched."""
    changes.refused = problem
    if not _money_moved(session):
        return
    currency, total, _ = charged_in_order_currency(session)
    row = PaymentMismatch(
        order=order,
        stripe_session_id=str(session.get("id") or "")[:255],
        stripe_payment_intent_id=id_of(session.get("payment_intent"))[:255],
        payment_status=str(session.get("payment_status") or "")[:30],
        amount_cents=total if isinstance(total, int) else None,
        currency=currency[:3],
        problem=problem[:500],
        source=source[:255],
    )
    if insert_unless_taken(row, "stripe_session_id"):
        changes.mismatch = row


def record_session(order: Order, session: dict[str, Any], changes: Changes, *, source: str) -> None:
    """checkout.session.completed / async_payment_succeeded, or a session the success page
    fetched. A session that may not pay this order changes nothing (session_problem)."""
    problem = session_problem(order, session)
    if problem:
        _refuse_session(order, session, changes, problem=problem, source=source)
        return
    paid = session.get("payment_status") in PAID
    current = attempt_of(session) in (None, order.attempt)
    if not paid and not current:
        return  # an old attempt's unpaid session says nothing about the current one
    intent = session.get("payment_intent")
    pi_id = id_of(intent)
    if paid and pi_id and not order.is_paid and order.stripe_payment_intent_id != pi_id:
        # Money taken always wins: the paying attempt's ids are the ones refunds will name.
        order.stripe_payment_intent_id, order.stripe_charge_id = pi_id, ""
        changes.mark()
    _, total, _ = charged_in_order_currency(session)
    # What the paying session charged wins over an earlier unpaid attempt's total.
    if total is not None and (order.amount_total_cents is None or (paid and not order.is_paid)):
        changes.mark(order.amount_total_cents != total)
        order.amount_total_cents = total
        discount, tax = discount_and_tax(session)
        changes.mark((order.discount_cents, order.tax_cents) != (discount, tax))
        order.discount_cents, order.tax_cents = discount, tax
    charge = intent.get("latest_charge") if isinstance(intent, dict) else None
    if isinstance(charge, dict):
        _record_charge_details(order, charge, changes)
    else:
        record_ids(order, changes, charge=id_of(charge))
    if not paid and session.get("status") == "complete":
        _payment_in_flight(order, changes)
    record_ids(order, changes, payment_intent=pi_id)
    _record_customer_name(order, session, changes)
    if paid:
        invoice = id_of(session.get("invoice"))
        if invoice and not order.stripe_invoice_id:  # STRIPE_INVOICES: the paying session's
            order.stripe_invoice_id = invoice
            changes.mark()
        mark_paid(order, changes, source=source)


def _record_customer_name(order: Order, session: dict[str, Any], changes: Changes) -> None:
    """The name Checkout collected (the cardholder's, for a card), for staff's search."""
    details = session.get("customer_details")
    name = str((details.get("name") if isinstance(details, dict) else None) or "")[:200]
    if name and order.customer_name != name:
        order.customer_name = name
        changes.mark()


def _payment_in_flight(order: Order, changes: Changes) -> None:
    """A session completed unpaid (a bank debit is on its way). Its declines came before it, so
    they no longer count; a failure that ended the session still does."""
    if order.is_paid or order.async_payment_pending or order.failure_code in FINAL_FAILURES:
        return
    order.async_payment_pending = True
    order.failure_code = order.failure_message = order.failure_source = ""
    order.failure_event_created = None
    changes.mark()


def record_failure(
    order: Order,
    changes: Changes,
    *,
    attempt: int | None,
    code: str,
    message: str,
    created: int,
    source: str,
) -> None:
    """The failure of the current attempt: a final one (the session expired or its delayed
    payment failed) over a decline, else the latest by (created, event id). Ignored once paid,
    and a decline is ignored once the session completed with a payment in flight."""
    if order.is_paid or attempt not in (None, order.attempt):
        return
    final, kept_final = code in FINAL_FAILURES, order.failure_code in FINAL_FAILURES
    if not final and (order.async_payment_pending or kept_final):
        return
    newer = order.failure_event_created is None or (created, source) > (
        order.failure_event_created,
        order.failure_source,
    )
    if not (newer or (final and not kept_final)):
        return
    order.failure_code = code[:100]
    order.failure_message = message[:500]
    order.failure_event_created = created
    order.failure_source = source[:255]
    order.async_payment_pending = False
    changes.failure = (code, message)
    changes.mark()


def _record_charge_details(order: Order, charge: dict[str, Any], changes: Changes) -> None:
    method = describe_payment_method(charge.get("payment_method_details"))
    if method and order.payment_method != method:
        order.payment_method = method[:100]
        changes.mark()
    record_ids(order, changes, charge=id_of(charge))
    if order.amount_total_cents is None and charge.get("amount") is not None:
        order.amount_total_cents = charge["amount"]
        changes.mark()


# Endpoints on API versions from 2022-11-15 up to 2024-10-28 get no refund.* events for charge
# refunds and no `refunds` list on the charge: charge.refunded's `amount_refunded` is all they say.
CHARGE_ONLY_REFUNDS = ("2022-11-15", "2024-10-28")


def record_charge(
    order: Order, charge: dict[str, Any], changes: Changes, *, source: str, api_version: str = ""
) -> None:
    """charge.refunded: the charge's refunded total only grows; embedded refunds are recorded
    too. Stripe counts a pending refund in `amount_refunded`, so the total is kept as told but
    refunds count as refund facts only: from their own objects, or, on an API version that sends
    no refund objects, as one succeeded refund for what the charge says beyond those known."""
    _record_charge_details(order, charge, changes)
    refunded = charge.get("amount_refunded") or 0
    if refunded > order.charge_amount_refunded_cents:
        order.charge_amount_refunded_cents = refunded
        changes.mark()
    embedded = (charge.get("refunds") or {}).get("data") or []
    for refund in embedded:
        record_refund(order, refund, changes, source=source)
    low, high = CHARGE_ONLY_REFUNDS
    if not embedded and low <= api_version[:10] < high:
        known = _refunds_total(order, excluding=UNDONE_REFUNDS)
        if refunded > known:
            record_refund(
                order,
                {
                    "id": f"{id_of(charge)}:refunded-to-{refunded}",
                    "amount": refunded - known,
                    "currency": charge.get("currency") or order.currency,
                    "status": "succeeded",
                },
                changes,
                source=source,
                reported_by_charge=True,
            )
    mark_paid(order, changes, source=source)


def _refunds_total(order: Order, *, excluding: set[str]) -> int:
    found = Refund.objects.filter(order=order).exclude(status__in=excluding)
    return found.aggregate(total=Sum("amount_cents"))["total"] or 0


def record_refund(
    order: Order,
    refund: dict[str, Any],
    changes: Changes,
    *,
    source: str,
    requested_by=None,
    sequence: int | None = None,
    reason: str = "",
    reported_by_charge: bool = False,
    seats: list[int] | None = None,
) -> Refund:
    """A refund's status only climbs Refund.RANK; seen succeeded once, it counts for good."""
    status = refund["status"]
    succeeded = status == Refund.State.SUCCEEDED
    row = Refund(
        stripe_refund_id=refund["id"],
        order=order,
        amount_cents=refund["amount"],
        currency=refund.get("currency") or order.currency,
        status=status,
        succeeded_once=succeeded,
        reason=reason or (refund.get("metadata") or {}).get("reason") or "",
        failure_reason=refund.get("failure_reason") or "",
        requested_by=requested_by,
        sequence=sequence,
        stripe_reason=str(refund.get("reason") or "")[:50],
        reported_by_charge=reported_by_charge,
        seats=seats or [],
    )
    created = insert_unless_taken(row, "stripe_refund_id")
    if not created:
        row = Refund.objects.get(stripe_refund_id=refund["id"])
    fields = []
    seats_added = False
    if sequence and row.sequence is None:
        row.sequence, row.requested_by, row.reason = sequence, requested_by, reason or row.reason
        seats_added = bool(seats) and not row.seats
        row.seats = seats or row.seats
        fields += ["sequence", "requested_by", "reason", "seats"]
    if refund.get("reason") and not row.stripe_reason:
        row.stripe_reason = str(refund["reason"])[:50]
        fields.append("stripe_reason")
    moved = not created and Refund.RANK[status] > Refund.RANK[row.status]
    if moved:
        row.status = status
        row.failure_reason = refund.get("failure_reason") or ""
        fields += ["status", "failure_reason"]
    newly_counted = succeeded and (created or not row.succeeded_once)
    if newly_counted and not created:
        row.succeeded_once = True
        fields.append("succeeded_once")
    if fields:
        row.save(update_fields=[*fields, "updated_at"])
    if newly_counted:
        order.refunds_succeeded_cents = statements.succeeded_refunds_total(order)
        changes.counted_refunds.append(row)
    if row.seats and (newly_counted or (seats_added and row.succeeded_once)):
        changes.seat_refunds.append((row, newly_counted))
    if created and status in PENDING_REFUNDS:
        changes.pending_refunds.append(row)  # on its way: the customer and staff are told once
    if (created or moved) and status in UNDONE_REFUNDS:
        # The customer did not get this money back: staff must act (refund again or settle).
        order.refund_failed_at = order.refund_failed_at or timezone.now()
        changes.undone_refunds.append(row)
    changes.mark(created or moved or newly_counted)
    record_ids(order, changes, payment_intent=id_of(refund.get("payment_intent")))
    record_ids(order, changes, charge=id_of(refund.get("charge")))
    if status not in UNDONE_REFUNDS:
        mark_paid(order, changes, source=source)
    return row


def record_dispute(
    order: Order,
    dispute: dict[str, Any],
    changes: Changes,
    *,
    event_type: str,
    created: int,
    source: str,
) -> None:
    """A dispute moves forward only (orders.disputes); its evidence deadline follows the status
    that is current."""
    status = dispute["status"]
    row = Dispute(
        stripe_dispute_id=dispute["id"],
        order=order,
        amount_cents=dispute["amount"],
        currency=dispute.get("currency") or order.currency,
        status=status,
        status_created=created,
        appealed_at=created if status in disputes.APPEAL_RANK else None,
        reason=dispute.get("reason") or "",
        evidence_due_by=_due_by(dispute),
    )
    new = insert_unless_taken(row, "stripe_dispute_id")
    if not new:
        row = Dispute.objects.get(stripe_dispute_id=dispute["id"])
    before = None if new else (row.stage, row.status)
    fields = []
    if (
        not new
        and status in disputes.APPEAL_RANK
        and (row.appealed_at is None or created < row.appealed_at)
    ):
        row.appealed_at = created
        fields.append("appealed_at")
    told = disputes.position(status, created, row.appealed_at)
    if not new and told > disputes.position(row.status, row.status_created, row.appealed_at):
        row.status, row.status_created = status, created
        fields += ["status", "status_created"]
        if _due_by(dispute) != row.evidence_due_by and "evidence_details" in dispute:
            row.evidence_due_by = _due_by(dispute)
            fields.append("evidence_due_by")
    if event_type.endswith("funds_withdrawn") and not row.funds_withdrawn:
        row.funds_withdrawn = True
        fields.append("funds_withdrawn")
    if event_type.endswith("funds_reinstated") and not row.funds_reinstated:
        row.funds_reinstated = True
        fields.append("funds_reinstated")
    fields += _record_dispute_fee(row, dispute)
    if fields:
        row.save(update_fields=[*fields, "updated_at"])
    told_changes = disputes.change_between(before, (row.stage, row.status))
    if new or {"status", "appealed_at", "fee_cents"} & set(fields):
        _summarise_disputes(order)
    changes.disputes += [(row, change) for change in told_changes]
    changes.mark(new or bool(fields))
    record_ids(order, changes, payment_intent=id_of(dispute.get("payment_intent")))
    record_ids(order, changes, charge=id_of(dispute.get("charge")))
    mark_paid(order, changes, source=source)


def _due_by(dispute: dict[str, Any]) -> datetime | None:
    due = (dispute.get("evidence_details") or {}).get("due_by")
    return datetime.fromtimestamp(due, UTC) if due else None


def _record_dispute_fee(row: Dispute, dispute: dict[str, Any]) -> list[str]:
    """The dispute fee from its balance transactions: the list only grows (a withdrawal, then a
    reinstatement whose fee may come back negative), so the longest one seen tells the total."""
    transactions = dispute.get("balance_transactions") or []
    if len(transactions) <= row.balance_transactions_seen:
        return []
    row.balance_transactions_seen = len(transactions)
    row.fee_cents = sum(txn.get("fee") or 0 for txn in transactions)
    row.fee_currency = str(transactions[0].get("currency") or "")[:3]
    return ["balance_transactions_seen", "fee_cents", "fee_currency"]


def _summarise_disputes(order: Order) -> None:
    """The order's dispute summary from its disputes, oldest first: open or lost, what
    chargebacks hold back, and the fees charged in the order's currency."""
    rows = statements.dispute_statuses(order)
    open_reasons = [reason for status, reason, *_ in rows if disputes.is_open(status)]
    lost = any(status == Dispute.Status.LOST for status, *_ in rows)
    order.disputes_summary = "lost" if lost else ("open" if open_reasons else "")
    order.open_dispute_reason = open_reasons[0] if open_reasons else ""
    order.chargebacks_cents = sum(
        amount for status, _, amount, *_ in rows if disputes.takes_money(status)
    )
    order.dispute_fees_cents = max(
        sum(fee for *_, fee, currency in rows if currency.lower() == order.currency.lower()), 0
    )


def record_invoice_links(order: Order, invoice: dict[str, Any], changes: Changes) -> None:
    """STRIPE_INVOICES: the hosted page and PDF of an invoice issued for the order, from its
    `invoice.finalized` or `invoice.paid` event (both carry the same links; a draft has none).
    Kept with the invoice's id: the receipt links them only for the paying session's invoice."""
    url, pdf = invoice.get("hosted_invoice_url") or "", invoice.get("invoice_pdf") or ""
    if not url.startswith("https://") or (pdf and not pdf.startswith("https://")):
        return  # a draft has none yet; anything but Stripe's https links is never drawn
    links = (invoice["id"], url, pdf)
    if (order.invoice_links_for, order.invoice_url, order.invoice_pdf_url) != links:
        order.invoice_links_for, order.invoice_url, order.invoice_pdf_url = links
        changes.mark()


def record_fraud_warning(order: Order, warning: dict[str, Any], changes: Changes) -> None:
    """radar.early_fraud_warning.created / .updated: the order is flagged with the warning's
    fraud type; `actionable` only ever ends (FraudWarning). With STRIPE_REFUND_ON_FRAUD_WARNING
    an actionable warning asks for a full refund (made by the refund_fraud_warnings worker,
    never here)."""
    actionable = warning.get("actionable") is True
    row = FraudWarning(
        order=order,
        stripe_warning_id=warning["id"],
        fraud_type=str(warning.get("fraud_type") or "")[:40],
        actionable=actionable,
        auto_refund=FraudWarning.AutoRefund.DUE
        if actionable and settings.STRIPE_REFUND_ON_FRAUD_WARNING
        else FraudWarning.AutoRefund.NONE,
    )
    new = insert_unless_taken(row, "stripe_warning_id")
    if new:
        changes.fraud_warnings.append(row)
    elif not actionable:
        FraudWarning.objects.filter(stripe_warning_id=warning["id"], actionable=True).update(
            actionable=False, updated_at=timezone.now()
        )
    warnings = list(order.fraud_warnings.order_by("stripe_warning_id"))
    flag = (warnings[0].fraud_type if warnings else "", any(w.actionable for w in warnings))
    changes.mark(new or (order.fraud_type, order.fraud_actionable) != flag)
    order.fraud_type, order.fraud_actionable = flag
    record_ids(order, changes, payment_intent=id_of(warning.get("payment_intent")))
    record_ids(order, changes, charge=id_of(warning.get("charge")))


def record_review(order: Order, review: dict[str, Any], changes: Changes) -> None:
    """review.opened / review.closed: a review moves forward only (open, then closed with its
    reason), so a late `review.opened` never reopens it. While one holds the keys
    (Review.holds_keys) the order says so (`review_hold`): the licenses follow."""
    is_open = review.get("open") is True
    closed_reason = "" if is_open else str(review.get("closed_reason") or "")[:40]
    row = Review(
        order=order,
        stripe_review_id=review["id"],
        opened_reason=str(review.get("opened_reason") or "")[:40],
        open=is_open,
        closed_reason=closed_reason,
    )
    if insert_unless_taken(row, "stripe_review_id"):
        changes.reviews.append((row, "opened" if is_open else "seen_closed"))
        changes.mark()
    else:
        row = Review.objects.get(stripe_review_id=review["id"])
        if row.open and not is_open:
            row.open, row.closed_reason = False, closed_reason
            row.save(update_fields=["open", "closed_reason", "updated_at"])
            changes.reviews.append((row, "closed"))
            changes.mark()
    hold = any(r.holds_keys for r in order.reviews.all())
    changes.mark(order.review_hold != hold)
    order.review_hold = hold
    record_ids(order, changes, payment_intent=id_of(review.get("payment_intent")))
    record_ids(order, changes, charge=id_of(review.get("charge")))
