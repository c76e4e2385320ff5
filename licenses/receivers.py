from django.dispatch import receiver

from orders.models import Status
from orders.signals import order_transitioned, refund_seats

from .lifecycle import (
    issue_licenses,
    reinstate_after_dispute,
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
