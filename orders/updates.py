"""The one way payment facts reach an order, whoever brings them: the webhook, the success page,
staff actions, the replay command and the offline gateway all call `update_order`.

In one transaction it merges the facts, applies the events that were waiting for this order,
saves, derives the status (`transition_order` sends `order_transitioned`), and only then tells the
other apps what changed, with the final facts: so a receiver never works the facts out again.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import DatabaseError, transaction

from . import amounts, facts, signals, statements
from .facts import Changes
from .models import Order, OrderTransition, StripeEvent
from .stripe_events import HANDLERS
from .transitions import sync_status

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Update:
    changed: bool  # a fact changed
    transition: OrderTransition | None
    refused: str = ""  # why the object was not applied to this order (facts.session_problem)


def update_order(order: Order, merge: Callable[[Changes], None], *, source: str) -> Update:
    """Merge facts into `order` (locked by the caller) with `merge`, and everything that follows."""
    with transaction.atomic(savepoint=False):
        changes = Changes()
        known = _references(order)
        merge(changes)
        if _references(order) - known:
            _apply_waiting_events(order, changes, known)
        # The facts go in the status move's UPDATE when they call for one, else on their own.
        fields = facts.FACT_FIELDS if changes.touched else ()
        transition = sync_status(order, source=source, also=fields)
        if fields and transition is None:
            order.save(update_fields=fields)
        _announce(order, changes, source=source)
    return Update(changes.touched, transition, changes.refused)


def _references(order: Order) -> set[str]:
    return {ref for ref in (order.stripe_payment_intent_id, order.stripe_charge_id) if ref}


def lock_references(*references: str) -> None:
    """Serialise "an event for a PaymentIntent or charge no order knows yet" with "an order learns
    that id", so a waiting event is never stored unseen by the order that needs it.

    An event takes one key (its PaymentIntent, else its charge) before it looks for its order; an
    order takes the ids it newly learns, after its row. An event only waits for an order's row when
    that order already knew the event's key, which it then does not take again, so no two
    transactions wait for each other. SQLite needs nothing: its IMMEDIATE transactions already run
    one at a time."""
    statements.lock_references(sorted(set(filter(None, references))))


def _apply_waiting_events(order: Order, changes: Changes, known: set[str]) -> None:
    """Apply refund and dispute events that arrived before the order knew their PaymentIntent or
    charge; one of them may teach the order another id, which more events may wait for. Only
    the ids it newly learns: events waiting for an id the order `known` before were applied when
    it learnt that one (lock_references), and none has waited for it since."""
    done = set(known)
    while refs := _references(order) - done:
        done |= refs
        lock_references(*refs)
        for stored in statements.waiting_events(sorted(refs)):
            _apply_late(order, stored, changes)


def _apply_late(order: Order, stored: StripeEvent, changes: Changes) -> None:
    before = {name: getattr(order, name) for name in facts.FACT_FIELDS}
    told = Changes(
        **{name: list(value) for name, value in vars(changes).items() if isinstance(value, list)}
    )
    try:
        with transaction.atomic():  # one event Stripe never sent right must not block the rest
            HANDLERS[stored.type](order, stored.payload["data"]["object"], stored.payload, changes)
    except (KeyError, TypeError, ValueError, DatabaseError) as error:
        for name, value in before.items():  # the savepoint undid the rows, this the order
            setattr(order, name, value)
        for name, value in vars(told).items():
            if isinstance(value, list):
                setattr(changes, name, value)
        log.error("stored event %s could not be applied: %r", stored.id, error)
        stored.detail = f"could not be applied late: {type(error).__name__}"
    else:
        stored.outcome, stored.detail = StripeEvent.Outcome.APPLIED, "applied late"
    stored.order = order
    stored.save(update_fields=["outcome", "order", "detail"])


def _announce(order: Order, changes: Changes, *, source: str) -> None:
    if changes.mismatch:
        signals.payment_mismatched.send(sender=Order, order=order, mismatch=changes.mismatch)
    if changes.paid:
        signals.payment_completed.send(sender=Order, order=order, source=source)
    if changes.failure:
        code, message = changes.failure
        signals.payment_failed.send(
            sender=Order, order=order, code=code, message=message, source=source
        )
    for refund in changes.counted_refunds:
        signals.refund_counted.send(
            sender=Order,
            order=order,
            refund=refund,
            refunded_total=amounts.refunded(order),
            fully_refunded=amounts.is_fully_refunded(order),
        )
    for refund, counted in changes.seat_refunds:
        signals.refund_seats.send(sender=Order, order=order, refund=refund, counted=counted)
    for refund in changes.pending_refunds:
        signals.refund_pending.send(sender=Order, order=order, refund=refund)
    for refund in changes.undone_refunds:
        signals.refund_failed.send(sender=Order, order=order, refund=refund)
    for dispute, change in changes.disputes:
        signals.dispute_changed.send(sender=Order, order=order, dispute=dispute, change=change)
    for warning in changes.fraud_warnings:
        signals.fraud_warning_raised.send(sender=Order, order=order, warning=warning)
    for review, change in changes.reviews:
        signals.review_changed.send(sender=Order, order=order, review=review, change=change)
