"""What people do to orders, as commands (audit.commands): complete, refund, retry, pay again,
settle a failed refund, export, and test-mode disputes.

Outside calls (Stripe) keep their order: the intent is checked and recorded, the call is made
with no lock held, and its outcome is recorded under the lock.
"""

from collections.abc import Iterator

from django.db import transaction

from audit.commands import Command, Refused, finish, recording_refusals
from audit.models import Outcome
from shop.money import format_money, smallest_refund

from . import amounts, checkout
from .gateways import UNKNOWN_OUTCOME, GatewayError, get_gateway, is_offline
from .models import Order, Refund, Status

P, C, F, R = Status.PENDING, Status.COMPLETED, Status.FAILED, Status.REFUNDED


class OrderCommand(Command):
    model = Order

    def lock(self, order: Order) -> Order:
        # NO KEY UPDATE, as the webhook takes it: rows pointing at the order stay writable.
        return Order.objects.select_for_update(no_key=True).get(pk=order.pk)

    def order_of(self, order: Order) -> Order:
        return order

    def fresh(self, order: Order) -> Order:
        return Order.objects.get(pk=order.pk)


class Complete(OrderCommand):
    """Staff record an offline payment (bank transfer, cash) for a pending or failed order. Its
    checkout is closed first, so the buyer cannot pay a second time."""

    name, label, permission = "orders.complete", "Complete", "orders.complete_order"

    def applies(self, order: Order) -> bool:
        return order.status in (P, F)

    def why_not(self, order: Order, *, by) -> str | None:
        if order.status not in (P, F):
            return f"Only a pending or failed order can be completed; this one is {order.status}."
        if order.async_payment_pending:
            return "A payment for this order is in flight; wait for it to settle."
        return None

    def run(self, order: Order, *, by, note: str = "") -> Order:
        order = self.fresh(order)
        self.check(order, by=by)
        if order.stripe_session_id:
            _close_or_refuse(self, order, by=by)
        return super().run(order, by=by, note=note)

    def act(self, order: Order, *, by, note: str = "") -> Order:
        checkout.record_offline_payment(order, staff=by, note=note)
        return order

    def detail_of(self, order, result, note: str = "") -> str:
        return note


def _close_or_refuse(command: Command, order: Order, *, by, words: str = "") -> None:
    try:
        checkout.close_session(order)
    except checkout.SessionCompleted:
        command.refused(
            order,
            by=by,
            words=words
            or "The customer completed the last checkout meanwhile; wait for its payment to settle.",
        )
    except GatewayError as error:
        command.refused(order, by=by, words=error.message, code=error.code)


CHARGEBACK_HOLDS = (
    "A chargeback holds this payment: Stripe refuses refunds while it is open, and a lost one "
    "already gave the money back. Answer the dispute in the Stripe Dashboard."
)
# Stripe's refund reasons a refund may be sent with (its API's `reason` enum).
STRIPE_REASONS = ("requested_by_customer", "duplicate", "fraudulent")


class RefundOrder(OrderCommand):
    """Refund all that is left, or an amount, through Stripe, and record it at once."""

    name, label, permission = "orders.refund", "Refund", "orders.refund_order"
    danger = True

    def applies(self, order: Order) -> bool:
        return order.status in (C, Status.DISPUTED) or order.refund_failed_at is not None

    def why_not(self, order: Order, *, by) -> str | None:
        again = order.refund_failed_at is not None and order.status in (C, R)
        if amounts.refunds_blocked(order):
            return CHARGEBACK_HOLDS
        # During an inquiry (no money held back) Stripe allows a refund, and so does the shop.
        if order.status not in (C, Status.DISPUTED) and not again:
            return f"Only a completed order can be refunded; this one is {order.status}."
        if not order.stripe_payment_intent_id:
            return "This order was paid outside Stripe; refund it there."
        if amounts.refundable(order) <= 0:
            return "Nothing is left to refund on this order."
        return None

    def run(
        self,
        order: Order,
        *,
        by,
        amount_cents: int | None = None,
        reason: str = "",
        seen_returned: int | None = None,
        stripe_reason: str = "requested_by_customer",
        seats: list[int] = (),
    ) -> Refund:
        """`seen_returned` is what the confirmation page showed as refunded already: a second
        click, or a second tab, finds it changed and is refused instead of refunding again.
        `seats` are license ids of this order to revoke once the refund counts."""
        with recording_refusals(self, order, by), transaction.atomic():
            order = self.lock(order)
            amount, sequence = self._intent(order, by, amount_cents, seen_returned)
            if stripe_reason not in STRIPE_REASONS:
                raise Refused(f"Stripe has no refund reason {stripe_reason!r}.")
            _check_seats(order, seats)
            words = f"{format_money(amount, order.currency)}: {reason}"
            if seats:
                words += f" (revokes {len(seats)} license{'s' if len(seats) > 1 else ''})"
            intent = self.record(order, by=by, detail=words, outcome=Outcome.STARTED)
        try:
            refund = checkout.request_refund(
                order, amount=amount, sequence=sequence, reason=reason, stripe_reason=stripe_reason
            )
        except GatewayError as error:
            if error.code not in UNKNOWN_OUTCOME:
                checkout.count_refund_refusal(order)  # Stripe answered: a new key next time
            finish(intent, outcome=Outcome.REFUSED, detail=f"{words} ({error.message})")
            raise Refused(error.message, recorded=True, code=error.code) from None
        with transaction.atomic():
            order = self.lock(order)
            row = checkout.record_requested_refund(
                order, refund, staff=by, sequence=sequence, reason=reason, seats=seats
            )
            finish(intent, outcome=Outcome.DONE, detail=f"{words} ({row.stripe_refund_id})")
        return row

    def _intent(self, order, by, amount_cents, seen_returned) -> tuple[int, int]:
        why = self.refusal(order, by=by)
        already = amounts.returned(order)
        if not why and seen_returned is not None and seen_returned != already:
            why = "This order was refunded meanwhile; reload it and check first."
        left = amounts.refundable(order, already=already)
        amount = left if amount_cents is None else amount_cents
        step = smallest_refund(order.currency)
        if not why and not step <= amount <= left:
            smallest, most = format_money(step, order.currency), format_money(left, order.currency)
            why = f"A refund must be between {smallest} and {most}."
        if not why and amount % step:
            why = (
                f"Stripe refunds {order.currency.upper()} in steps of "
                f"{format_money(step, order.currency)}; {format_money(amount, order.currency)} "
                "is not one."
            )
        if why:
            raise Refused(why)
        return amount, checkout.next_refund_sequence(order)


class RefundFraudWarning(RefundOrder):
    """STRIPE_REFUND_ON_FRAUD_WARNING: the shop itself (the refund_fraud_warnings worker, by
    None) refunds what is left of an order Stripe Radar warned of, by the same path and rules as
    a staff refund. No person may run it: a screen passes its user, never None."""

    name, label, permission = "orders.refund_fraud_warning", "Refund (early fraud warning)", None

    def permitted(self, by) -> bool:
        return by is None


def _check_seats(order: Order, seats: list[int]) -> None:
    """Only the order's own licenses that are not revoked yet may go with its refund."""
    # The licenses app's rows, through the order's reverse relation (orders imports no licenses).
    open_seats = set(order.licenses.exclude(status="revoked").values_list("pk", flat=True))
    strangers = sorted(set(seats) - open_seats)
    if strangers:
        raise Refused(
            f"License {', '.join(f'#{pk}' for pk in strangers)} is not an unrevoked license of "
            "this order."
        )


class Retry(OrderCommand):
    """A failed order gets a new attempt and a new Checkout Session; returns the payment link.
    The old session is closed first, so a tab still open on it cannot take a second payment."""

    name, label, permission = "orders.retry", "Retry", "orders.retry_order"
    completed_meanwhile = ""  # the words when the buyer completed the old session meanwhile

    def applies(self, order: Order) -> bool:
        return order.status == F

    def why_not(self, order: Order, *, by) -> str | None:
        if order.status != F:
            return f"Only a failed order can be retried; this one is {order.status}."
        return None

    def source(self, by) -> tuple[str, str]:
        return checkout.staff_source(by), "staff retry"

    def run(self, order: Order, *, by) -> str:
        order = self.fresh(order)
        self.check(order, by=by)
        if order.stripe_session_id:
            _close_or_refuse(self, order, by=by, words=self.completed_meanwhile)
        super().run(order, by=by)
        try:
            return checkout.start_checkout(self.fresh(order))  # its new attempt
        except GatewayError as error:  # the attempt is recorded failed, with the error
            self.refused(order, by=by, words=error.message, code=error.code)

    def act(self, order: Order, *, by) -> None:
        source, reason = self.source(by)
        checkout.new_attempt(order, source=source, reason=reason)

    def detail_of(self, order, result) -> str:
        return f"attempt {order.attempt}"


class PayAgain(Retry):
    """The customer pays a failed order again (what staff "retry" does), from /account."""

    name, label, permission = "orders.pay_again", "Pay again", None
    completed_meanwhile = (
        "A payment for this order is already on its way; this page shows it once it arrives."
    )

    def why_not(self, order: Order, *, by) -> str | None:
        if order.email != getattr(by, "email", None):
            return "This order is not yours."
        if order.status != F:
            return f"This order is {order.status}: there is nothing to pay again."
        return None

    def source(self, by) -> tuple[str, str]:
        return f"customer:{by.email}", "paid again by the customer"


class Settle(OrderCommand):
    """A failed refund was dealt with outside the shop (paid back another way, or the customer
    agreed): the order is no longer flagged. No money moves."""

    name, label, permission = "orders.settle", "Mark refund settled", "orders.settle_order"

    def applies(self, order: Order) -> bool:
        return order.refund_failed_at is not None

    def why_not(self, order: Order, *, by) -> str | None:
        if order.refund_failed_at is None:
            return "No failed refund is waiting on this order."
        return None

    def act(self, order: Order, *, by) -> None:
        checkout.clear_refund_failure(order)


class Export(OrderCommand):
    """The orders list as CSV, every customer's email in it: recorded, and for Finance and up."""

    name, label, permission = "orders.export", "Export CSV", "orders.export_orders"

    def run_export(self, *, by, lines: Iterator[str], described: str) -> Iterator[str]:
        if not self.permitted(by):
            self.refused(None, by=by, words=self.refusal(None, by=by))
        self.record(None, by=by, detail=described)
        return lines

    def order_of(self, obj) -> None:
        return None


class OpenTestDispute(OrderCommand):
    """TEST MODE only: the offline gateway opens a chargeback on the order's payment."""

    name, label = "orders.open_test_dispute", "Open a test dispute"
    permission = "orders.simulate_dispute"

    def applies(self, order: Order) -> bool:
        return is_offline() and order.status == C

    def why_not(self, order: Order, *, by) -> str | None:
        if not is_offline():
            return "Disputes are simulated in test mode only."
        if order.status != C:
            return f"A test dispute is opened on a completed order; this one is {order.status}."
        if not order.stripe_payment_intent_id:
            return "This order was paid outside Stripe: there is no payment to dispute."
        return None

    def act(self, order: Order, *, by) -> str:
        return _gateway_call(lambda: get_gateway().open_dispute(order.stripe_payment_intent_id))


class CloseTestDispute(OrderCommand):
    """TEST MODE only: the order's open dispute closes, won or lost."""

    permission = "orders.simulate_dispute"

    def __init__(self, *, won: bool) -> None:
        self.won = won
        self.name = f"orders.close_test_dispute_{'won' if won else 'lost'}"
        self.label = f"Close the test dispute as {'won' if won else 'lost'}"

    def applies(self, order: Order) -> bool:
        return is_offline() and order.status == Status.DISPUTED

    def why_not(self, order: Order, *, by) -> str | None:
        if not is_offline():
            return "Disputes are simulated in test mode only."
        if not any(dispute.is_open for dispute in order.disputes.all()):
            return "No dispute of this order is open."
        return None

    def act(self, order: Order, *, by) -> None:
        gateway = get_gateway()
        for dispute in (d for d in order.disputes.all() if d.is_open):
            _gateway_call(
                lambda d=dispute: gateway.close_dispute(d.stripe_dispute_id, won=self.won)
            )


def _gateway_call(call):
    try:
        return call()
    except GatewayError as error:
        raise Refused(error.message, code=error.code) from None


class _TestRadar(OrderCommand):
    """TEST MODE only: the offline gateway plays Stripe Radar on the order's payment."""

    permission = "orders.simulate_dispute"

    def applies(self, order: Order) -> bool:
        return is_offline() and order.status == C

    def why_not(self, order: Order, *, by) -> str | None:
        if not is_offline():
            return "Radar is simulated in test mode only."
        if order.status != C:
            return f"{self.what} on a completed order; this one is {order.status}."
        if not order.stripe_payment_intent_id:
            return "This order was paid outside Stripe: there is no payment to check."
        return None

    def _open_review(self, order: Order):
        return next((review for review in order.reviews.all() if review.open), None)


class RaiseTestFraudWarning(_TestRadar):
    name, label = "orders.raise_test_fraud_warning", "Raise a test fraud warning"
    what = "A test fraud warning is raised"

    def act(self, order: Order, *, by) -> dict:
        pi = order.stripe_payment_intent_id
        return _gateway_call(lambda: get_gateway().raise_fraud_warning(pi))


class OpenTestReview(_TestRadar):
    name, label = "orders.open_test_review", "Open a test review"
    what = "A test review is opened"

    def applies(self, order: Order) -> bool:
        return super().applies(order) and self._open_review(order) is None

    def why_not(self, order: Order, *, by) -> str | None:
        if self._open_review(order) is not None:
            return "A review of this payment is open already."
        return super().why_not(order, by=by)

    def act(self, order: Order, *, by) -> dict:
        return _gateway_call(lambda: get_gateway().open_review(order.stripe_payment_intent_id))


class ApproveTestReview(_TestRadar):
    name, label = "orders.approve_test_review", "Approve the test review"

    def applies(self, order: Order) -> bool:
        return is_offline() and self._open_review(order) is not None

    def why_not(self, order: Order, *, by) -> str | None:
        if not is_offline():
            return "Radar is simulated in test mode only."
        if self._open_review(order) is None:
            return "No review of this payment is open."
        return None

    def act(self, order: Order, *, by) -> dict:
        review = self._open_review(order)
        return _gateway_call(lambda: get_gateway().close_review(review.stripe_review_id))


complete = Complete()
refund = RefundOrder()
refund_fraud_warning = RefundFraudWarning()
retry = Retry()
pay_again = PayAgain()
settle = Settle()
export = Export()
open_test_dispute = OpenTestDispute()
raise_test_fraud_warning = RaiseTestFraudWarning()
open_test_review = OpenTestReview()
approve_test_review = ApproveTestReview()
close_test_dispute_won = CloseTestDispute(won=True)
close_test_dispute_lost = CloseTestDispute(won=False)
