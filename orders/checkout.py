"""What customers and staff do to orders: place, pay, fulfil; and the mechanics of completing,
refunding and retrying (orders.commands decides who may, and when).

Each function calls the gateway when it must, and writes facts through `facts` and the status
through `transitions`, so the webhook and these paths share one set of rules.
"""

import contextlib
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from . import facts
from .gateways import GatewayError, LineItem, get_gateway
from .models import CheckoutSession, Order, OrderItem, OrderTransition, Product, Refund, Status
from .signals import checkout_started, order_placed
from .stripe_events import locate_order
from .transitions import transition_order
from .updates import update_order

log = logging.getLogger(__name__)


def _lock(order: Order) -> Order:
    return Order.objects.select_for_update(no_key=True).get(pk=order.pk)


@transaction.atomic
def place_order(
    *, product: Product, quantity: int, email: str, user=None, is_renewal: bool = False
) -> Order:
    order = Order.objects.create(
        email=email,  # stored canonical (Order.save)
        user=user,
        is_renewal=is_renewal,
        currency=product.currency,
        subtotal_cents=product.price_cents * quantity,
        product_names=product.name[:500],
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
            expires_at=int(
                (timezone.now() + timedelta(minutes=settings.CHECKOUT_EXPIRES_MINUTES)).timestamp()
            ),
        )
    except GatewayError as error:
        _record_checkout_error(order, error)
        raise
    with transaction.atomic():
        order = _lock(order)
        record_checkout_session(order, session)
        checkout_started.send(sender=Order, order=order, session_id=session["id"])
    return session["url"]


def record_checkout_session(order: Order, session: dict) -> CheckoutSession:
    """The order's current session, what it asked for, and where and until when the buyer pays
    it: only sessions recorded here may pay their order (facts.session_problem). The caller holds
    the order's lock."""
    order.stripe_session_id = session["id"]
    order.save(update_fields=["stripe_session_id", "updated_at"])
    expires = session.get("expires_at")
    return CheckoutSession.objects.create(
        order=order,
        stripe_session_id=session["id"],
        attempt=order.attempt,
        amount_cents=order.subtotal_cents,
        currency=order.currency,
        url=session.get("url") or "",
        expires_at=datetime.fromtimestamp(expires, UTC) if expires else None,
    )


def open_checkout(order: Order) -> CheckoutSession | None:
    """The order's current Checkout Session while the buyer can still pay it ("Continue to
    payment"): pending, no bank debit in flight, not expired or closed by the shop."""
    if order.status != Status.PENDING or order.async_payment_pending or not order.stripe_session_id:
        return None
    session = CheckoutSession.objects.filter(
        stripe_session_id=order.stripe_session_id, closed_at=None, expires_at__gt=timezone.now()
    ).first()
    return session if session and session.url else None


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


def staff_source(user) -> str:
    return f"staff:{user.email}" if user else "staff"


# What staff and customers do, as mechanics: orders.commands decides whether they may, holds
# the lock and records who did it. The functions that take a locked order are called under it.


def record_offline_payment(order: Order, *, staff, note: str = "") -> None:
    """Staff record an offline payment (bank transfer, cash) for the locked `order`. Their note
    goes in the audit record (orders.commands), never where the customer reads."""
    order.payment_method = "paid outside Stripe"
    order.save(update_fields=["payment_method", "updated_at"])
    source = staff_source(staff)
    update_order(
        order, lambda changes: facts.mark_paid(order, changes, source=source), source=source
    )


def next_refund_sequence(order: Order) -> int:
    return order.refunds.exclude(sequence=None).count() + 1


def refund_idempotency_key(order: Order, sequence: int) -> str:
    """The same key for a retry of a request whose outcome is unknown (a timeout, a 5xx), so two
    clicks at once or a retry get one refund; a new one after Stripe refused (it keeps a refused
    request's answer under its key for 24 hours, so the old key would refuse again)."""
    key = f"refund-{order.public_id}-{sequence}"
    return f"{key}-{order.refund_refusals}" if order.refund_refusals else key


def request_refund(
    order: Order,
    *,
    amount: int,
    sequence: int,
    reason: str,
    stripe_reason: str = "requested_by_customer",
) -> dict:
    """Ask the gateway for a refund; no lock may be held while it answers."""
    return get_gateway().create_refund(
        payment_intent=order.stripe_payment_intent_id,
        amount=amount,
        idempotency_key=refund_idempotency_key(order, sequence),
        metadata={"order_id": str(order.public_id), "reason": reason[:500]},
        reason=stripe_reason,
    )


def count_refund_refusal(order: Order) -> None:
    """Stripe answered a refund request with a refusal: the next request gets a new key."""
    Order.objects.filter(pk=order.pk).update(refund_refusals=F("refund_refusals") + 1)


def record_requested_refund(
    order: Order, refund: dict, *, staff, sequence: int, reason: str, seats: list[int] = ()
) -> Refund:
    """The gateway's answer to `request_refund`, merged into the locked `order` at once (the
    webhook's copy is then a duplicate fact). A refund that succeeds clears a failed one's flag."""
    source = staff_source(staff)

    def merge(changes: facts.Changes) -> None:
        row = facts.record_refund(
            order, refund, changes, source=source, requested_by=staff, sequence=sequence,
            reason=reason, seats=list(seats),
        )  # fmt: skip
        if order.refund_failed_at and row.status == Refund.State.SUCCEEDED:
            order.refund_failed_at = None
            changes.mark()

    update_order(order, merge, source=source)
    return order.refunds.get(stripe_refund_id=refund["id"])


def clear_refund_failure(order: Order) -> None:
    """A failed refund was dealt with outside the shop: the locked `order` is no longer flagged."""
    order.refund_failed_at = None
    order.save(update_fields=["refund_failed_at", "updated_at"])


def new_attempt(order: Order, *, source: str, reason: str) -> None:
    """The locked failed `order` gets its next attempt and is pending again; `start_checkout`
    then makes its Checkout Session."""
    order.attempt += 1
    order.failure_code = order.failure_message = order.failure_source = ""
    order.failure_event_created = None
    order.async_payment_pending = False
    order.save()
    transition_order(order, Status.PENDING, source=source, reason=reason)
    order_placed.send(sender=Order, order=order)


class SessionCompleted(Exception):
    """The buyer completed the Checkout Session as the shop tried to close it: its payment (or
    bank debit) is on its way."""


def close_session(order: Order) -> None:
    """Make sure the buyer can no longer pay the order's Checkout Session: expire it if it is
    open, then look again; SessionCompleted if they completed it, even at the moment we expired
    it, unless it was a bank debit that failed since (Stripe keeps such a session `complete` and
    `unpaid`: no money can come of it any more).

    The session is marked closed by the shop first: its `checkout.session.expired` event is then
    no failure of the buyer's (stripe_events), and staff completing an order by hand do not
    first fail it."""
    session_id = order.stripe_session_id
    CheckoutSession.objects.filter(stripe_session_id=session_id).update(closed_at=timezone.now())
    gateway = get_gateway()
    if gateway.retrieve_session(session_id).get("status") == "open":
        with contextlib.suppress(GatewayError):  # completed or expired meanwhile: looked at next
            gateway.expire_session(session_id)
    session = gateway.retrieve_session(session_id)
    debit_failed = (
        order.failure_code == "async_payment_failed"
        and session.get("payment_status") not in facts.PAID
    )
    if session.get("status") == "complete" and not debit_failed:
        raise SessionCompleted


def find_order(public_id: str) -> Order | None:
    try:
        return Order.objects.filter(public_id=uuid.UUID(str(public_id))).first()
    except ValueError:
        return None
