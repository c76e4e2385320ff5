"""The transactional outbox: a Notification and one Delivery per subscribed destination, written
in the transaction of the change that caused them. Nothing is sent from here."""

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.db import transaction
from django.dispatch import receiver

from .discord import InvalidWebhookURL, parse_webhook_url
from .events import DEFAULT_EVENTS
from .models import DeliveryStatus, Destination, Notification
from .statements import insert_notification

SETTINGS_DESTINATION = "DISCORD_WEBHOOK_URL"
_synced: dict[str, bool] = {}


@receiver(setting_changed, dispatch_uid="forget_synced_webhook_url")
def _forget_synced_url(setting: str, **kwargs) -> None:
    if setting == "DISCORD_WEBHOOK_URL":
        _synced.clear()


def sync_settings_destination() -> None:
    """Keep the destination named after DISCORD_WEBHOOK_URL in line with the setting (once per
    process and URL). A new webhook, or a new `?thread_id=` in the URL, also re-enables it:
    someone fixed what Discord refused (a forum channel needs a thread). A URL without a thread
    leaves the destination's thread as staff set it. An unset URL changes nothing (a process
    started without it must not silence the shop): disable or delete the destination in the
    admin."""
    url = settings.DISCORD_WEBHOOK_URL
    if not url or _synced.get(url):
        return
    try:
        webhook = parse_webhook_url(url)
    except InvalidWebhookURL:
        return  # reported by the system checks
    row, created = Destination.objects.get_or_create(
        name=SETTINGS_DESTINATION,
        defaults={
            "webhook_id": webhook.webhook_id,
            "token": webhook.token,
            "thread_id": webhook.thread_id,
            "from_settings": True,
            "events": list(DEFAULT_EVENTS),
        },
    )
    moved = (row.webhook_id, row.token) != (webhook.webhook_id, webhook.token)
    if not created and (moved or webhook.thread_id not in ("", row.thread_id)):
        row.webhook_id, row.token, row.from_settings = webhook.webhook_id, webhook.token, True
        row.thread_id = webhook.thread_id  # a new webhook's channel has none of the old threads
        row.enabled, row.disabled_reason, row.channel_id = True, "", ""
        fields = [
            "webhook_id",
            "token",
            "thread_id",
            "from_settings",
            "enabled",
            "disabled_reason",
            "channel_id",
        ]
        row.save(update_fields=fields)
    _synced.clear()
    _synced[url] = True


def enqueue(
    event: str, embed: dict[str, Any], *, order=None, only: list[int] | None = None
) -> Notification:
    """Record the notification and its deliveries, in the caller's transaction: one for each
    destination subscribed to `event`, or for each in `only` (see statements.insert_notification
    for which destinations get one)."""
    with transaction.atomic(savepoint=False):
        sync_settings_destination()
        return insert_notification(Notification(event=event, order=order, embed=embed), only=only)


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
