"""Order lifecycles as the Stripe events that tell them, and what "the same final state" means.

Shared by the any-order property test, the concurrency tests and the soak (bench/soak.py).
"""

import itertools
import time
from collections.abc import Callable
from typing import Any

from orders import amounts, disputes
from orders.models import FraudWarning, Order, OrderTransition, Review
from testkit.stripe_objects import (
    API_WITHOUT_REFUND_EVENTS,
    charge_obj,
    dispute_obj,
    fraud_warning_obj,
    intent_failed_obj,
    make_event,
    refund_obj,
    review_obj,
    session_obj,
)

# (event type, object), or (event type, object, the event's own fields: an older api_version)
Step = tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], dict[str, Any]]
OLD_API = {"api_version": API_WITHOUT_REFUND_EVENTS}


def paid(order: Order, **session: Any) -> list[Step]:
    return [("checkout.session.completed", session_obj(order, **session))]


def declined(order: Order) -> list[Step]:
    return [("payment_intent.payment_failed", intent_failed_obj(order))]


def refunded_in_two_steps(order: Order) -> list[Step]:
    total, part = order.subtotal_cents, 1000
    return [
        *paid(order),
        ("refund.created", refund_obj(order, f"re_{order.number}_1", part)),
        ("charge.refunded", charge_obj(order, refunded=part)),
        ("refund.created", refund_obj(order, f"re_{order.number}_2", total - part)),
        ("charge.refunded", charge_obj(order, refunded=total)),
    ]


def refunded_slowly(order: Order) -> list[Step]:
    """A refund that waits (pending) before it succeeds, as refunds to bank accounts do."""
    refund, total = f"re_{order.number}", order.subtotal_cents
    return [
        *paid(order),
        ("refund.created", refund_obj(order, refund, total, status="pending")),
        ("charge.refunded", charge_obj(order, refunded=total)),
        ("refund.updated", refund_obj(order, refund, total)),
    ]


def refunded_then_failed(order: Order) -> list[Step]:
    """A refund Stripe reported succeeded that failed later (the buyer's bank refused it)."""
    refund, total = f"re_{order.number}", order.subtotal_cents
    return [
        *paid(order),
        ("refund.created", refund_obj(order, refund, total)),
        ("charge.refunded", charge_obj(order, refunded=total)),
        ("refund.failed", refund_obj(order, refund, total, status="failed")),
    ]


def refund_events_then_failed(order: Order) -> list[Step]:
    """The same with refund events only: no charge.refunded carries the charge's total."""
    refund, total = f"re_{order.number}", order.subtotal_cents
    return [
        *paid(order),
        ("refund.created", refund_obj(order, refund, total)),
        ("refund.failed", refund_obj(order, refund, total, status="failed")),
    ]


def refund_pending_then_failed(order: Order) -> list[Step]:
    """A Dashboard refund that waits (pending), which the charge already counts, then fails: the
    money never went back, so the order stays completed and its keys active."""
    refund, total = f"re_{order.number}", order.subtotal_cents
    return [
        *paid(order),
        ("refund.created", refund_obj(order, refund, total, status="pending")),
        ("charge.refunded", charge_obj(order, refunded=total)),
        ("refund.failed", refund_obj(order, refund, total, status="failed")),
    ]


def refunded_by_charge_only(order: Order) -> list[Step]:
    """An endpoint on an API version without refund events: two charge.refunded, nothing else."""
    total = order.subtotal_cents
    return [
        *paid(order),
        ("charge.refunded", charge_obj(order, refunded=1000), OLD_API),
        ("charge.refunded", charge_obj(order, refunded=total), OLD_API),
    ]


def chargeback_after_a_partial_refund(order: Order) -> list[Step]:
    """$10 refunded, then the whole charge disputed and lost, with Stripe's dispute fee."""
    dispute, total = f"dp_{order.number}", order.subtotal_cents
    withdrawal = {"id": f"txn_{order.number}", "object": "balance_transaction",
                  "amount": -total, "fee": 1500, "currency": order.currency}  # fmt: skip
    return [
        *paid(order),
        ("refund.created", refund_obj(order, f"re_{order.number}", 1000)),
        ("charge.dispute.created", dispute_obj(order, dispute)),
        (
            "charge.dispute.funds_withdrawn",
            dispute_obj(order, dispute, balance_transactions=[withdrawal]),
        ),
        (
            "charge.dispute.closed",
            dispute_obj(order, dispute, "lost", balance_transactions=[withdrawal]),
        ),
    ]


def taxed_then_partly_refunded(order: Order) -> list[Step]:
    """Tax made the charge larger than the catalog price; a refund of the catalog price is partial,
    even when it arrives before the payment event that tells the charged total."""
    refund = f"re_{order.number}"
    return [
        *declined(order),
        *paid(
            order,
            amount_total=order.subtotal_cents + 500,
            total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 500},
        ),
        ("refund.created", refund_obj(order, refund, order.subtotal_cents)),
    ]


def debit_in_flight(order: Order) -> list[Step]:
    """A session completed unpaid: a bank debit is on its way, nothing has settled yet."""
    return [("checkout.session.completed", session_obj(order, payment_status="unpaid"))]


def discounted_then_refunded(order: Order) -> list[Step]:
    """A promotion code: Stripe charged less than the catalog price, and refunded all of it."""
    charged, refund = order.subtotal_cents - 500, f"re_{order.number}"
    return [
        *declined(order),
        # As Stripe tells a promotion code: the items' subtotal, and the discount off it.
        *paid(
            order,
            amount_total=charged,
            total_details={"amount_discount": 500, "amount_shipping": 0, "amount_tax": 0},
        ),
        ("refund.created", refund_obj(order, refund, charged)),
        ("charge.refunded", charge_obj(order, amount=charged, refunded=charged)),
    ]


def disputed_until(outcome: str) -> Callable[[Order], list[Step]]:
    def steps(order: Order) -> list[Step]:
        dispute = f"dp_{order.number}"
        steps = [
            *paid(order),
            ("charge.dispute.created", dispute_obj(order, dispute)),
            ("charge.dispute.funds_withdrawn", dispute_obj(order, dispute)),
            ("charge.dispute.updated", dispute_obj(order, dispute, "under_review")),
            ("charge.dispute.closed", dispute_obj(order, dispute, outcome)),
        ]
        if outcome == "won":
            steps.append(("charge.dispute.funds_reinstated", dispute_obj(order, dispute, "won")))
        return steps

    return steps


def dispute_steps(order: Order, *statuses: str) -> list[Step]:
    """A dispute going through `statuses`, told as Stripe tells each move."""
    dispute, steps = f"dp_{order.number}", []
    for n, status in enumerate(statuses):
        closing = status in disputes.CLOSING
        kind = "created" if n == 0 else ("closed" if closing else "updated")
        steps.append((f"charge.dispute.{kind}", dispute_obj(order, dispute, status)))
    return steps


def appealed(first: str, then: str) -> Callable[[Order], list[Step]]:
    def steps(order: Order) -> list[Step]:
        return [
            *paid(order),
            *dispute_steps(
                order, "needs_response", first, "appeal_needs_response", "appeal_under_review", then
            ),
        ]

    return steps


def escalated(order: Order) -> list[Step]:
    """An inquiry that became a chargeback, then won."""
    statuses = ("warning_needs_response", "warning_under_review", "needs_response", "under_review")
    return [*paid(order), *dispute_steps(order, *statuses, "won")]


def prevented(order: Order) -> list[Step]:
    return [*paid(order), *dispute_steps(order, "warning_needs_response", "prevented")]


def expired(order: Order) -> list[Step]:
    session = session_obj(order, status="expired", payment_status="unpaid")
    return [("checkout.session.expired", session)]


def async_payment(outcome: str) -> Callable[[Order], list[Step]]:
    def steps(order: Order) -> list[Step]:
        later = session_obj(order, payment_status="paid" if outcome == "succeeded" else "unpaid")
        return [
            ("checkout.session.completed", session_obj(order, payment_status="unpaid")),
            (f"checkout.session.async_payment_{outcome}", later),
        ]

    return steps


def warned_then_refunded(order: Order) -> list[Step]:
    """Radar's early fraud warning, the full refund Stripe advises (reason fraudulent), and the
    warning's update: nothing left to act on."""
    charged = order.subtotal_cents
    return [
        *paid(order),
        ("radar.early_fraud_warning.created", fraud_warning_obj(order)),
        ("refund.created", refund_obj(order, f"re_{order.number}", charged, reason="fraudulent")),
        ("radar.early_fraud_warning.updated", fraud_warning_obj(order, actionable=False)),
    ]


def reviewed(closed_reason: str) -> Callable[[Order], list[Step]]:
    """A Radar review opened on the payment, then closed; closed as refunded (as fraud), the
    Dashboard's refund comes with it."""

    def steps(order: Order) -> list[Step]:
        money_back = closed_reason in Review.MONEY_BACK
        return [
            *paid(order),
            ("review.opened", review_obj(order)),
            ("review.closed", review_obj(order, closed_reason=closed_reason)),
            *(
                [("refund.created", refund_obj(order, f"re_{order.number}", order.subtotal_cents))]
                if money_back
                else []
            ),
        ]

    return steps


def warned_reviewed_disputed_and_won(order: Order) -> list[Step]:
    """A warning, a review, the dispute that followed (the review closes as disputed), won."""
    dispute = f"dp_{order.number}"
    return [
        *paid(order),
        ("radar.early_fraud_warning.created", fraud_warning_obj(order)),
        ("review.opened", review_obj(order)),
        ("charge.dispute.created", dispute_obj(order, dispute, "needs_response")),
        ("radar.early_fraud_warning.updated", fraud_warning_obj(order, actionable=False)),
        ("review.closed", review_obj(order, closed_reason="disputed")),
        ("charge.dispute.closed", dispute_obj(order, dispute, "won")),
    ]


def after_a_decline(lifecycle: Callable[[Order], list[Step]]) -> Callable[[Order], list[Step]]:
    return lambda order: [*declined(order), *lifecycle(order)]


# name: (the lifecycle's steps, the status its in-order sequence ends in)
LIFECYCLES: dict[str, tuple[Callable[[Order], list[Step]], str]] = {
    "paid": (paid, "completed"),
    "declined then paid": (after_a_decline(paid), "completed"),
    "paid, partly then fully refunded": (refunded_in_two_steps, "refunded"),
    "paid, refund pending then succeeded": (refunded_slowly, "refunded"),
    # Refunded is final (the table has no way back), and the charge's refunded total never shrinks.
    "paid, refunded, the refund failed later": (refunded_then_failed, "refunded"),
    "declined, paid less with a promotion code, refunded": (discounted_then_refunded, "refunded"),
    "dispute won": (disputed_until("won"), "completed"),
    "dispute lost": (disputed_until("lost"), "refunded"),
    "inquiry closed with a warning": (disputed_until("warning_closed"), "completed"),
    "dispute lost, won on appeal": (appealed("lost", "won"), "completed"),
    "dispute won, lost on appeal": (appealed("won", "lost"), "refunded"),
    "inquiry escalated to a chargeback, won": (escalated, "completed"),
    "dispute prevented": (prevented, "completed"),
    "expired": (expired, "failed"),
    "declined then expired": (after_a_decline(expired), "failed"),
    "async payment succeeded": (async_payment("succeeded"), "completed"),
    "async payment failed": (async_payment("failed"), "failed"),
    "declined, then an async payment failed": (after_a_decline(async_payment("failed")), "failed"),
    "paid, refunded, the refund failed later (refund events only)": (
        refund_events_then_failed,
        "refunded",
    ),
    "declined, taxed, refunded the catalog price": (taxed_then_partly_refunded, "completed"),
    "paid, a refund pending then failed": (refund_pending_then_failed, "completed"),
    "paid, refunds told by charge.refunded only": (refunded_by_charge_only, "refunded"),
    "paid, partly refunded, then a chargeback lost": (
        chargeback_after_a_partial_refund,
        "refunded",
    ),
    # The debit started after the decline (a completed session takes no more cards).
    "declined, then a bank debit in flight": (after_a_decline(debit_in_flight), "pending"),
    "declined, then an async payment succeeded": (
        after_a_decline(async_payment("succeeded")),
        "completed",
    ),
    # Stripe Radar (issue 21).
    "paid, an early fraud warning, refunded in full": (warned_then_refunded, "refunded"),
    "paid, in review, approved": (reviewed("approved"), "completed"),
    "paid, in review, refunded as fraud": (reviewed("refunded_as_fraud"), "refunded"),
    "paid, warned, in review, disputed and won": (warned_reviewed_disputed_and_won, "completed"),
}


def events_for(order: Order, lifecycle: str) -> list[dict[str, Any]]:
    """The lifecycle's events, one second apart, as Stripe would stamp them."""
    steps, _ = LIFECYCLES[lifecycle]
    start = int(time.time())
    return [
        make_event(kind, obj, created=start + n, **(fields[0] if fields else {}))
        for n, (kind, obj, *fields) in enumerate(steps(order))
    ]


def final_state(order: Order) -> dict[str, Any]:
    """The status, payment facts and licenses, with the order's own number taken out of Stripe ids so two
    orders that lived the same lifecycle compare equal."""
    order = Order.objects.get(pk=order.pk)

    def plain(stripe_id: str) -> str:
        return stripe_id.replace(order.number, "N")

    failed = order.status == "failed"
    return {
        "status": order.status,
        "paid": order.is_paid,
        "async_payment_pending": order.async_payment_pending,
        "failure": (order.failure_code, order.failure_message) if failed else None,
        "refunded_amount": amounts.refunded(order),
        "charge_amount_refunded": order.charge_amount_refunded_cents,
        "ledger": amounts.ledger(order),
        # A refund told only by charge.refunded is named after the charge's total when told: its
        # rows depend on which totals arrived first, the amount they make (the ledger) does not.
        "refunds": sorted(
            (plain(r.stripe_refund_id), r.amount_cents, r.status)
            for r in order.refunds.filter(reported_by_charge=False)
        ),
        "disputes": sorted(
            (
                plain(d.stripe_dispute_id),
                d.status,
                d.funds_withdrawn,
                d.funds_reinstated,
                d.fee_cents,
            )
            for d in order.disputes.all()
        ),
        # Licenses listen to the order's moves: the same end, whatever the way there.
        "licenses": sorted(order.licenses.values_list("status", "reason")),
        "payment_intent": plain(order.stripe_payment_intent_id),
        "charge": plain(order.stripe_charge_id),
        "amount_total": order.amount_total_cents,
        "discount": order.discount_cents,
        "tax": order.tax_cents,
        "payment_method": order.payment_method,
        # Stripe Radar: the order's flag, each warning and review, and whether keys are held.
        "fraud": (order.fraud_type, order.fraud_actionable, order.review_hold),
        "warnings": sorted(
            (plain(w.stripe_warning_id), w.fraud_type, w.actionable)
            for w in FraudWarning.objects.filter(order=order)
        ),
        "reviews": sorted(
            (plain(r.stripe_review_id), r.open, r.closed_reason)
            for r in Review.objects.filter(order=order)
        ),
    }


def audit_trail(order: Order) -> list[tuple[str, str]]:
    return list(OrderTransition.objects.filter(order=order).values_list("from_status", "to_status"))


def assert_one_row_per_real_change(order: Order) -> None:
    """The audit rows chain from the order's creation to its status, and none records a non-move."""
    trail = audit_trail(order)
    assert trail[0] == ("", "pending"), trail
    for (_, before), (after_from, after_to) in itertools.pairwise(trail):
        assert after_from == before, trail
        assert after_from != after_to, trail
    assert trail[-1][1] == Order.objects.get(pk=order.pk).status, trail
