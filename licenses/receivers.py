from django.dispatch import receiver

from orders.models import Status
from orders.signals import order_transitioned

from .lifecycle import issue_licenses, reinstate_after_dispute, revoke_all, suspend_for_dispute
from .models import SuspensionReason


@receiver(order_transitioned, dispatch_uid="sync_licenses_with_order")
def sync_licenses_with_order(sender, order, transition, **kwargs) -> None:
    """Runs inside the transition's transaction; every branch is idempotent."""
    to = transition.to_status
    # An order leaving pending or failed never had licenses, and one leaving completed, disputed
    # or refunded had them issued when it left pending or failed (licenses are issued nowhere
    # else, and no move leads back there): issuing is for the first move only.
    first_time = transition.from_status in (Status.PENDING, Status.FAILED)
    if to == Status.COMPLETED:
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
