"""What the test gateway's worker (deliver_test_events) has to do, as /healthz and the /mgmt
overview show it (declared to workers.queues when the app is ready)."""

from datetime import datetime

from django.conf import settings

from workers import queues

from .gateways import is_offline
from .models import FraudWarning, OfflineEvent


def backlog(now: datetime) -> int:
    """The offline gateway's delayed events that are due."""
    return OfflineEvent.objects.filter(delivered_at=None, deliver_after__lte=now).count()


def fraud_refunds_due(now: datetime) -> int:
    """Early fraud warnings whose full refund (STRIPE_REFUND_ON_FRAUD_WARNING) is due."""
    return FraudWarning.objects.filter(auto_refund=FraudWarning.AutoRefund.DUE).count()


def declare() -> None:
    # Only the test gateway's delayed payments need this worker.
    queues.declare("deliver_test_events", backlog=backlog, place=2, needed=is_offline)
    queues.declare(
        "refund_fraud_warnings",
        backlog=fraud_refunds_due,
        place=3,
        needed=lambda: settings.STRIPE_REFUND_ON_FRAUD_WARNING,
    )
