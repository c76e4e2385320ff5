"""What staff do to a destination from /mgmt: switch it on or off, or queue a test message."""

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .embeds import as_text, fit
from .events import COLOURS, Event
from .models import Destination, Notification
from .outbox import enqueue


def probe_embed(sent_by: str = "manage.py send_test_notification") -> dict:
    """Shaped like an order's embed, link included, so that it fails where theirs would."""
    return fit(
        {
            "title": "Test notification from License Shop",
            "url": f"{settings.SITE_URL}/{settings.MGMT_PATH}/",
            "description": "If you can read this, the shop can post to this channel.",
            "color": COLOURS[Event.TEST],
            "fields": [
                {"name": "Shop", "value": settings.SITE_URL, "inline": True},
                {"name": "Sent by", "value": as_text(sent_by), "inline": True},
            ],
            "footer": {"text": "License Shop"},
            "timestamp": timezone.now().isoformat(),
        }
    )


def set_enabled(destination: Destination, *, enabled: bool) -> Destination:
    """Staff decide: on (the reason Discord gave for switching it off is cleared) or off."""
    destination.enabled, destination.disabled_reason = enabled, ""
    destination.save(update_fields=["enabled", "disabled_reason"])
    return destination


def queue_test(destination: Destination, *, sent_by: str) -> Notification:
    """A test message for the worker to send (nothing is sent from a web request)."""
    if not destination.enabled:
        reason = destination.disabled_reason or "enable it first"
        raise ValueError(f"{destination} is disabled: {reason}")
    with transaction.atomic():
        return enqueue(Event.TEST, probe_embed(sent_by), only=[destination.pk])
