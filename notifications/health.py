"""What the Discord worker (deliver_notifications) has to do, and Discord's standing, as /healthz
and the /mgmt overview show them (declared to workers.queues when the app is ready)."""

from datetime import datetime
from typing import Any

from workers import queues

from . import ip_limits
from .models import Delivery, Destination


def backlog(now: datetime) -> int:
    """Messages waiting for a destination that is switched on."""
    return Delivery.objects.filter(status="pending", destination__enabled=True).count()


def dead() -> int:
    """Messages given up on: they wait for staff to send them again."""
    return Delivery.objects.filter(status="dead").count()


def discord(now: datetime) -> dict[str, Any]:
    return {
        **ip_limits.health(now),
        "destinations_disabled": Destination.objects.filter(enabled=False).count(),
    }


def discord_is_healthy(report: dict[str, Any]) -> bool:
    """A ban, or a destination switched off, holds messages back until someone acts."""
    return not (report["state"] == "banned" or report["destinations_disabled"])


def declare() -> None:
    queues.declare(
        "deliver_notifications", backlog=backlog, place=0, dead=dead, dead_as="outbox_dead"
    )
    queues.declare_report("discord", discord, healthy=discord_is_healthy)
