"""What customers and staff do to orders: place, pay, fulfil, complete, refund, retry.

Each function validates, calls the gateway when it must, and writes facts through `facts` and
the status through `transitions`, so the webhook and these paths share one set of rules.
"""

import contextlib
import logging
import time
import uuid

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.urls import reverse

from . import facts
from .gateways import GatewayError, LineItem, get_gateway
from .models import CheckoutSession, Order, OrderItem, OrderTransition, Product, Refund, Status
from .money import format_money
from .signals import checkout_started, order_placed
from .stripe_events import locate_order
from .transitions import transition_order
from .updates import update_order

log = logging.getLogger(__name__)


class OrderActionError(Exception):
    """A staff or customer action that cannot be done now; the message says why."""


def _lock(order: Order) -> Order:
    return Order.objects.select_for_update(no_key=True).get(pk=order.pk)


@transaction.atomic
def place_order(*, product: Product, quantity: int, email: str, user=None) -> Order:
    order = Order.objects.create(
        email=email,  # stored canonical (Order.save)
        user=user,
        currency=product.currency,
        subtotal_cents=product.price_cents * quantity,
    )
    OrderItem.objects.create(
        order=order, product=product, quantity=quantity, unit_price_cents=product.price_cents
    )
    OrderTransition.objects.create(
        order=order, to_status=Status.PENDING, source="checkout", reason="order placed"
    )
    order_placed.send(sender=Order, order=order)
    return order


def start_checkout(order: Order) -> str:
    """Create the Checkout Session for the order's current attempt; returns where to send the buyer.

    On a gateway error the attempt is recorded as failed with the error, and the error re-raised.
    """
    items = [
        LineItem(name=item.product.name, unit_amount=item.unit_price_cents, quantity=item.quantity)
        for item in order.line_items()
    ]
    try:
        session = get_gateway().create_session(
            order_id=str(order.public_id),
            attempt=order.attempt,
            email=order.email,
            currency=order.currency,
            items=items,
            success_url=settings.SITE_URL
            + reverse("orders:success")
            + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=settings.SITE_URL + reverse("orders:cancel", args=[order.public_id]),
        )
    except GatewayError as error:
        _record_checkout_error(order, error)
        raise
    with transaction.atomic():
        order = _lock(order)
        record_checkout_session(order, session["id"])
        checkout_started.send(sender=Order, order=order, session_id=session["id"])
    return session["url"]


def record_checkout_session(order: Order, session_id: str) -> CheckoutSession:
    """The order's current session, and what it asked for: only sessions recorded here may pay
    their order (facts.session_problem). The caller holds the order's lock."""
    order.stripe_session_id = session_id
    order.save(update_fields=["stripe_session_id", "updated_at"])
    return CheckoutSession.objects.create(
        order=order,
        stripe_session_id=session_id,
        attempt=order.attempt,
        amount_cents=order.subtotal_cents,
        currency=order.currency,
    )


def _record_checkout_error(order: Order, error: GatewayError) -> None:
    with transaction.atomic():
        order = _lock(order)
        update_order(
            order,
            lambda changes: facts.record_failure(
                order,
                changes,
                attempt=order.attempt,
                code=error.code,
                message=error.message,
                created=int(time.time()),
                source="checkout",
            ),
            source="checkout",
        )


class PaymentRefused(Exception):
    """A session that may not pay the order it names (facts.session_problem): it was kept for
    staff, and the order left as it was."""

    def __init__(self, words: str, *, order: Order) -> None:
        super().__init__(words)
        self.words = words
        self.order = order


def fulfil_session(session_id: str) -> Order | None:
    """The success page's half of fulfilment: fetch the session from Stripe and apply it, exactly
    as the webhook would. Safe to run any number of times, concurrently with the webhook.
    PaymentRefused for a session that may not pay the order it names."""
    session = get_gateway().retrieve_session(session_id)
    with transaction.atomic():
        order = locate_order(session)
        if order is None:
            return None
        update = update_order(
            order,
            lambda changes: facts.record_session(order, session, changes, source="success page"),
            source="success page",
        )
    if update.refused:
        raise PaymentRefused(update.refused, order=order)
    return order


def _staff(user) -> str:
    return f"staff:{user.email}" if user else "staff"


def complete_order(order: Order, *, staff, note: str = "") -> Order:
    """Staff record an offline payment (bank transfer, cash) for a pending or failed order.

    The order's checkout is closed first, so the buyer cannot pay a second time; refused while
    the buyer's own payment may still arrive (a completed checkout, a bank debit in flight).
    """
    order = Order.objects.get(pk=order.pk)
    _require_completable(order)
    if order.stripe_session_id:
        _close_session(order.stripe_session_id)
    with transaction.atomic():
        order = _lock(order)
        _require_completable(order)
        order.payment_method = (note or "offline payment recorded by staff")[:100]
        order.save()
        source = _staff(staff)
        update_order(
            order, lambda changes: facts.mark_paid(order, changes, source=source), source=source
        )
    return order


def _require_completable(order: Order) -> None:
    if order.status not in (Status.PENDING, Status.FAILED):
        raise OrderActionError(
            f"Only a pending or failed order can be completed; this one is {order.status}."
        )
    if order.async_payment_pending:
        raise OrderActionError("A payment for this order is in flight; wait for it to settle.")


def refund_order(
    order: Order,
    *,
    staff,
    amount_cents: int | None = None,
    reason: str = "",
    expected_refunded_cents: int | None = None,
) -> Refund:
    """Refund all that is left, or `amount_cents`, through the gateway, and record it at once.

    No lock is held while Stripe answers. The Idempotency-Key comes from the order and the
    refund's sequence, so two clicks at once ask Stripe with one key and get one refund, and a
    retry after a timeout gets Stripe's first answer instead of a second refund.
    `expected_refunded_cents` (what the staff member saw) rejects a stale form. An order whose
    refund failed (refund_failed_at) may be refunded again, up to what did not reach the customer;
    a refund that then succeeds clears the flag.
    """
    with transaction.atomic():
        order = _lock(order)
        amount = _refundable(order, amount_cents, expected_refunded_cents)
        sequence = order.refunds.exclude(sequence=None).count() + 1
    refund = get_gateway().create_refund(
        payment_intent=order.stripe_payment_intent_id,
        amount=amount,
        idempotency_key=f"refund-{order.public_id}-{sequence}",
        metadata={"order_id": str(order.public_id), "reason": reason[:500]},
    )
    source = _staff(staff)

    def merge(changes: facts.Changes) -> None:
        row = facts.record_refund(
            order,
            refund,
            changes,
            source=source,
            requested_by=staff,
            sequence=sequence,
            reason=reason,
        )
        if order.refund_failed_at and row.status == Refund.State.SUCCEEDED:
            order.refund_failed_at = None
            changes.mark()

    with transaction.atomic():
        order = _lock(order)
        update_order(order, merge, source=source)
    return order.refunds.get(stripe_refund_id=refund["id"])


def returned_amount(order: Order) -> int:
    """What went back to the customer, or is on its way: Stripe's count for the charge, less the
    refunds that failed or were canceled since, or our own refunds, whichever is more."""
    by_status = dict(
        order.refunds.values_list("status").annotate(total=Sum("amount_cents")).order_by()
    )
    undone = sum(by_status.get(status, 0) for status in facts.UNDONE_REFUNDS)
    ours = sum(total for status, total in by_status.items() if status not in facts.UNDONE_REFUNDS)
    return max(order.charge_amount_refunded_cents - undone, ours, 0)


def refundable_amount(order: Order) -> int:
    return max(order.total_cents - returned_amount(order), 0)


def _refundable(order: Order, amount_cents: int | None, expected_refunded_cents: int | None) -> int:
    again = order.refund_failed_at is not None and order.status in (
        Status.COMPLETED,
        Status.REFUNDED,
    )
    if order.status != Status.COMPLETED and not again:
        raise OrderActionError(
            f"Only a completed order can be refunded; this one is {order.status}."
        )
    already = returned_amount(order)
    if expected_refunded_cents is not None and expected_refunded_cents != already:
        raise OrderActionError("This order was refunded meanwhile; reload it and check first.")
    left = max(order.total_cents - already, 0)
    amount = left if amount_cents is None else amount_cents
    if not 0 < amount <= left:
        if not left:
            raise OrderActionError("Nothing is left to refund on this order.")
        smallest, most = format_money(1, order.currency), format_money(left, order.currency)
        raise OrderActionError(f"A refund must be between {smallest} and {most}.")
    if not order.stripe_payment_intent_id:
        raise OrderActionError("This order was paid outside Stripe; refund it there.")
    return amount


@transaction.atomic
def settle_refund_failure(order: Order, *, staff) -> Order:
    """Staff: a failed refund was dealt with outside the shop (paid back another way, or the
    customer agreed); the order is no longer flagged. The caller records who did it."""
    order = _lock(order)
    if order.refund_failed_at is None:
        raise OrderActionError("No failed refund is waiting on this order.")
    order.refund_failed_at = None
    order.save(update_fields=["refund_failed_at", "updated_at"])
    log.info("order %s: failed refund settled by %s", order.number, _staff(staff))
    return order


def retry_order(order: Order, *, staff, source: str = "") -> str:
    """A failed order gets a new attempt and a new Checkout Session; returns the payment link.
    Staff retry it, or the customer pays again (`staff=None`, `source` names them).

    The old session is closed first, so a tab still open on it cannot take a second payment; if
    the buyer completed it meanwhile, the retry is refused (its payment event is on its way).
    """
    order = Order.objects.get(pk=order.pk)
    if order.status != Status.FAILED:
        raise OrderActionError(f"Only a failed order can be retried; this one is {order.status}.")
    if order.stripe_session_id:
        _close_session(order.stripe_session_id)
    with transaction.atomic():
        order = _lock(order)
        if order.status != Status.FAILED:
            raise OrderActionError(
                f"Only a failed order can be retried; this one is {order.status}."
            )
        order.attempt += 1
        order.failure_code = order.failure_message = order.failure_source = ""
        order.failure_event_created = None
        order.async_payment_pending = False
        order.save()
        transition_order(
            order,
            Status.PENDING,
            source=source or _staff(staff),
            reason="staff retry" if staff else "paid again by the customer",
        )
        order_placed.send(sender=Order, order=order)
    return start_checkout(order)


def _close_session(session_id: str) -> None:
    """Make sure the buyer can no longer pay this Checkout Session: expire it if it is open, then
    look again, and refuse if they completed it (its payment is on its way), even at the moment
    we expired it."""
    gateway = get_gateway()
    if gateway.retrieve_session(session_id).get("status") == "open":
        with contextlib.suppress(GatewayError):  # completed or expired meanwhile: looked at next
            gateway.expire_session(session_id)
    if gateway.retrieve_session(session_id).get("status") == "complete":
        raise OrderActionError(
            "The customer completed the last checkout meanwhile; wait for its payment to settle."
        )


def find_order(public_id: str) -> Order | None:
    try:
        return Order.objects.filter(public_id=uuid.UUID(str(public_id))).first()
    except ValueError:
        return None
