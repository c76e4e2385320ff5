"""What of the orders app may be pruned past its age (workers.retention runs it).

Stripe events keep their row and lose their payload: the row's unique id is what turns a
redelivery (Stripe retries for 3 days, a replay reaches 30 days back) into a harmless duplicate,
and the order's event list stays; the payload is the bulk. Events still waiting for their order
keep the payload they will be applied from. Test-gateway events go once delivered, with the
objects nothing can use any more; charges stay (a test order may still be refunded or disputed),
as do open sessions, disputes and reviews.
"""

from datetime import datetime

from django.db.models import Q, QuerySet

from workers.retention import Prunable, delete_rows

from .models import EventOutcome, OfflineEvent, OfflineObject, StripeEvent

CLOSED_DISPUTE = ("won", "lost")  # what the test gateway closes a dispute with


def event_payloads(cutoff: datetime) -> QuerySet:
    return (
        StripeEvent.objects.filter(received_at__lt=cutoff)
        .exclude(outcome=EventOutcome.UNKNOWN_ORDER)
        .exclude(payload={})
    )


def delivered_test_events(cutoff: datetime) -> QuerySet:
    return OfflineEvent.objects.filter(delivered_at__lt=cutoff)


def unneeded_test_objects(cutoff: datetime) -> QuerySet:
    still_needed = (
        Q(kind="session", data__status="open")
        | Q(kind="charge")
        | (Q(kind="dispute") & ~Q(data__status__in=CLOSED_DISPUTE))
        | Q(kind="review", data__open=True)
    )
    return OfflineObject.objects.filter(created_at__lt=cutoff).exclude(still_needed)


PRUNABLE = [
    Prunable(
        "stripe event payloads", "dropped", event_payloads, lambda rows: rows.update(payload={})
    ),
    Prunable("test gateway events", "deleted", delivered_test_events, delete_rows),
    Prunable("test gateway objects", "deleted", unneeded_test_objects, delete_rows),
]
