"""STRIPE_REFUND_ON_FRAUD_WARNING: the full refunds Stripe advises for actionable early fraud
warnings. The webhook only marks a warning's refund due (FraudWarning.auto_refund, written with
the warning: an outbox row); this, run by the `refund_fraud_warnings` worker, makes the call to
Stripe through orders.commands, as a staff refund does, with no lock held while Stripe answers.
"""

import logging

from django.conf import settings
from django.db.models import Q

from audit.commands import Refused

from . import commands
from .gateways import UNKNOWN_OUTCOME
from .models import FraudWarning

log = logging.getLogger(__name__)
Due = FraudWarning.AutoRefund


def refund_due_warnings(limit: int = 20) -> int:
    """Refund the orders of due warnings; how many warnings were settled (refunded or not)."""
    if not settings.STRIPE_REFUND_ON_FRAUD_WARNING:
        return 0
    # A warning whose payment's event has not come yet waits (refunded once it has), without
    # holding up the ones behind it.
    due = FraudWarning.objects.filter(auto_refund=Due.DUE).filter(
        Q(order__paid_at__isnull=False) | Q(actionable=False)
    )
    return sum(_refund(warning) for warning in due.select_related("order").order_by("id")[:limit])


def _refund(warning: FraudWarning) -> int:
    order = warning.order
    if not warning.actionable:
        return _settle(warning, Due.SKIPPED, "Stripe no longer calls the warning actionable.")
    words = f"Stripe Radar early fraud warning ({warning.fraud_type_words or 'no type given'})"
    try:
        refund = commands.refund_fraud_warning.run(
            order, by=None, reason=words, stripe_reason="fraudulent"
        )
    except Refused as refused:
        if refused.code in UNKNOWN_OUTCOME:
            log.warning("fraud warning %s: Stripe's answer unknown, tried again", warning.pk)
            return 0  # the same Idempotency-Key next time: one refund at most
        return _settle(warning, Due.SKIPPED, refused.words)
    return _settle(warning, Due.DONE, f"Refunded {refund.stripe_refund_id}.")


def _settle(warning: FraudWarning, outcome: str, detail: str) -> int:
    return FraudWarning.objects.filter(pk=warning.pk, auto_refund=Due.DUE).update(
        auto_refund=outcome, auto_refund_detail=detail[:500]
    )
