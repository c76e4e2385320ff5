from django.dispatch import receiver

from orders import amounts, signals
from orders.checkout import open_checkout
from orders.models import Status
from orders.signals import order_transitioned, refund_seats

from . import notices
from .lifecycle import (
    hold_for_review,
    issue_licenses,
    reinstate_after_dispute,
    release_after_review,
    revoke_all,
    revoke_seats,
    suspend_for_dispute,
)
from .models import SuspensionReason
from .renewals import extend, take_back


@receiver(order_transitioned, dispatch_uid="sync_licenses_with_order")
def sync_licenses_with_order(sender, order, transition, **kwargs) -> None:
    """Runs inside the transition's transaction; every branch is idempotent."""
    to = transition.to_status
    # An order leaving pending or failed never had licenses, and one leaving completed, disputed
    # or refunded had them issued when it left pending or failed (licenses are issued nowhere
    # else, and no move leads back there): issuing is for the first move only.
    first_time = transition.from_status in (Status.PENDING, Status.FAILED)
    if order.is_renewal:
        _sync_renewal(order, to, first_time)
    elif to == Status.COMPLETED:
        if first_time:
            issue_licenses(order, first_time=True)
        else:
            reinstate_after_dispute(order)  # refunded → completed: a chargeback won on appeal
        if order.review_hold:  # a Radar review holds the payment: so its keys wait
            hold_for_review(order)
    elif to == Status.DISPUTED:
        if first_time:
            issue_licenses(order, first_time=True)  # a dispute that came before the payment event
        suspend_for_dispute(order)
    elif to == Status.REFUNDED:
        lost = order.disputes_summary == "lost"
        reason = SuspensionReason.CHARGEBACK if lost else SuspensionReason.REFUND
        if first_time:  # money went back before it came
            issue_licenses(order, with_keys=False, reason=reason, first_time=True)
        revoke_all(order, reason=reason)


@receiver(signals.review_changed, dispatch_uid="hold_licenses_for_review")
def hold_licenses_for_review(sender, order, review, change, **kwargs) -> None:
    """A Radar review holds the keys while it is open (and after it closed as refunded, until
    the refund's events revoke them); its close as approved lets them go."""
    if order.review_hold:
        hold_for_review(order)
    else:
        release_after_review(order, review_id=review.stripe_review_id)


@receiver(refund_seats, dispatch_uid="revoke_refunded_seats")
def revoke_refunded_seats(sender, order, refund, **kwargs) -> None:
    """The licenses staff chose with a partial refund go once it counts, in its transaction."""
    revoke_seats(order, refund.seats)


def _sync_renewal(order, to: str, first_time: bool) -> None:
    """A renewal has no license of its own: it moves its license's expiry (renewals.py). Paid
    (or disputed, which means paid) extends; refunded takes back; a won appeal extends again."""
    if to == Status.REFUNDED:
        take_back(order)
    elif to == Status.COMPLETED or (to == Status.DISPUTED and first_time):
        extend(order)


# What the buyer is told by email (notices.py): each receiver runs in the change's transaction.


@receiver(signals.payment_failed, dispatch_uid="tell_buyer_bank_payment_failed")
def tell_buyer_bank_payment_failed(sender, order, code, message, **kwargs) -> None:
    # A declined card or an abandoned checkout happen while the buyer is on the page; a bank
    # debit fails days later, when nobody is looking.
    if code == "async_payment_failed" and not order.is_paid:
        notices.bank_payment_failed(order, message=message, checkout=open_checkout(order))


@receiver(signals.refund_counted, dispatch_uid="tell_buyer_refund_made")
def tell_buyer_refund_made(sender, order, refund, refunded_total, fully_refunded, **kwargs) -> None:
    if refund.seats and not fully_refunded:
        return  # told with its licenses, once they are revoked (tell_buyer_seats_revoked)
    notices.refund_made(order, refund, refunded_total=refunded_total, fully=fully_refunded)


@receiver(refund_seats, dispatch_uid="tell_buyer_seats_revoked")
def tell_buyer_seats_revoked(sender, order, refund, counted, **kwargs) -> None:
    # After revoke_refunded_seats (receivers run in the order they were connected). Seats chosen
    # after the refund was told make an email of their own.
    notices.refund_made(
        order,
        refund,
        refunded_total=amounts.refunded(order),
        fully=amounts.is_fully_refunded(order),
        reference=refund.stripe_refund_id if counted else f"{refund.stripe_refund_id}:seats",
    )


@receiver(signals.refund_pending, dispatch_uid="tell_buyer_refund_pending")
def tell_buyer_refund_pending(sender, order, refund, **kwargs) -> None:
    notices.refund_pending(order, refund)


@receiver(signals.refund_failed, dispatch_uid="tell_buyer_refund_failed")
def tell_buyer_refund_failed(sender, order, refund, **kwargs) -> None:
    notices.refund_failed(order, refund)


@receiver(signals.dispute_changed, dispatch_uid="tell_buyer_dispute_changed")
def tell_buyer_dispute_changed(sender, order, dispute, change, **kwargs) -> None:
    notices.dispute_changed(order, dispute, change)
