"""The transactional outbox: a Notification and one Delivery per subscribed destination, written
in the transaction of the change that caused them. Nothing is sent from here."""

from typing import Any

from django.conf import settings
from django.db import transaction

from .discord import InvalidWebhookURL, parse_webhook_url
from .events import DEFAULT_EVENTS
from .models import Delivery, DeliveryStatus, Destination, Notification

SETTINGS_DESTINATION = "DISCORD_WEBHOOK_URL"
_synced: dict[str, bool] = {}


def sync_settings_destination() -> None:
    """Keep the destination named after DISCORD_WEBHOOK_URL in line with the setting (once per
    process and URL)."""
    url = settings.DISCORD_WEBHOOK_URL
    if _synced.get(url):
        return
    try:
        webhook_id, token = parse_webhook_url(url) if url else ("", "")
    except InvalidWebhookURL:
        webhook_id = token = ""
    if webhook_id:
        Destination.objects.update_or_create(
            name=SETTINGS_DESTINATION,
            defaults={"webhook_id": webhook_id, "token": token, "from_settings": True},
            create_defaults={
                "webhook_id": webhook_id,
                "token": token,
                "from_settings": True,
                "events": list(DEFAULT_EVENTS),
            },
        )
    else:
        Destination.objects.filter(name=SETTINGS_DESTINATION, from_settings=True).update(
            enabled=False, disabled_reason="DISCORD_WEBHOOK_URL is not set"
        )
    _synced.clear()
    _synced[url] = True


def enqueue(
    event: str, embed: dict[str, Any], *, order=None, only: list[int] | None = None
) -> Notification:
    """Record the notification and its deliveries, in the caller's transaction."""
    with transaction.atomic(savepoint=False):
        sync_settings_destination()
        notification = Notification.objects.create(event=event, order=order, embed=embed)
        destinations = Destination.objects.filter(enabled=True)
        destinations = destinations.filter(pk__in=only) if only is not None else destinations
        Delivery.objects.bulk_create(
            Delivery(notification=notification, destination=destination)
            for destination in destinations
            if only is not None or event in destination.events
        )
    return notification


def resend(deliveries) -> int:
    """Staff: queue dead (or already sent) messages again, as new, to their destinations."""
    return deliveries.exclude(status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=None,
        solo=False,
        use_fallback=False,
        sent_at=None,
        last_error="",
    )
