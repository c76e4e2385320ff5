"""What the test gateway's worker (deliver_test_events) has to do, as /healthz and the /mgmt
overview show it (declared to workers.queues when the app is ready)."""

from datetime import datetime

from workers import queues

from .gateways import is_offline
from .models import OfflineEvent


def backlog(now: datetime) -> int:
    """The offline gateway's delayed events that are due."""
    return OfflineEvent.objects.filter(delivered_at=None, deliver_after__lte=now).count()


def declare() -> None:
    # Only the test gateway's delayed payments need this worker.
    queues.declare("deliver_test_events", backlog=backlog, place=2, needed=is_offline)
