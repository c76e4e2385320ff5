"""The offline test gateway's events, signed with STRIPE_WEBHOOK_SECRET and handed to the real
webhook verification and handler, as Stripe would deliver them."""

import json
import logging

from django.conf import settings
from django.db import connection, transaction
from django.dispatch import receiver
from django.utils import timezone

from .gateways.offline import OfflineGateway, events_emitted, record_delivered
from .models import OfflineEvent
from .webhooks import receive, sign_payload

log = logging.getLogger(__name__)


def deliver_due_events(limit: int = 100) -> int:
    """Expire the checkouts past their time, as Stripe would, then sign and hand due events to
    the webhook handler; what fails stays for the next round."""
    OfflineGateway().expire_overdue()
    delivered = 0
    for event_id in _due_event_ids(limit):
        with transaction.atomic():
            event = OfflineEvent.objects.select_for_update().filter(id=event_id).first()
            if event is None or event.delivered_at:
                continue
            body = json.dumps(event.payload).encode()
            try:
                receive(body, sign_payload(body, settings.STRIPE_WEBHOOK_SECRET))
            except Exception:
                # What Stripe does after a 500: keep the event and try again on the next round.
                log.exception("offline event %s %s not delivered", event.id, event.type)
                continue
            record_delivered(event)
            delivered += 1
    return delivered


@receiver(events_emitted, dispatch_uid="deliver_emitted_test_events")
def deliver_emitted_events(sender, **kwargs) -> None:
    deliver_due_events()


def _due_event_ids(limit: int) -> list[str]:
    due = OfflineEvent.objects.filter(delivered_at=None, deliver_after__lte=timezone.now())
    if connection.features.has_select_for_update_skip_locked:
        with transaction.atomic():
            return list(
                due.select_for_update(skip_locked=True).values_list("id", flat=True)[:limit]
            )
    return list(due.values_list("id", flat=True)[:limit])
