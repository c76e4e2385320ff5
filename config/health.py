"""GET /healthz: the database, each worker the shop needs in its mode, and their backlogs."""

from datetime import timedelta

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError
from django.db.models import Max
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from licenses.models import KeyEmail, KeyEmailStatus
from notifications import ip_limits
from notifications.models import Delivery, Destination
from orders.gateways import is_offline
from orders.models import OfflineEvent
from workers.models import Heartbeat

# A worker beats every 5 s; a minute of silence means it is gone or stuck.
STALE = timedelta(seconds=60)


def _backlogs(now) -> dict[str, int]:
    backlogs = {
        "deliver_notifications": Delivery.objects.filter(
            status="pending", destination__enabled=True
        ).count(),
        "send_key_emails": KeyEmail.objects.filter(status=KeyEmailStatus.PENDING).count(),
    }
    if is_offline():  # the test gateway's delayed payments need their own worker
        backlogs["deliver_test_events"] = OfflineEvent.objects.filter(
            delivered_at=None, deliver_after__lte=now
        ).count()
    return backlogs


def worker_states(now) -> dict[str, dict]:
    """Each expected worker: "ok", "stale" or "never seen", its last heartbeat and its backlog
    (/healthz and the /mgmt overview). Raises DatabaseError when the database does not answer."""
    backlogs = _backlogs(now)
    seen = dict(
        Heartbeat.objects.filter(kind__in=backlogs)
        .values("kind")
        .annotate(last=Max("seen_at"))
        .values_list("kind", "last")
    )
    return {
        kind: {
            "state": "never seen"
            if kind not in seen
            else ("ok" if now - seen[kind] < STALE else "stale"),
            "seen_at": seen.get(kind),
            "backlog": backlog,
        }
        for kind, backlog in backlogs.items()
    }


@login_not_required
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the database answers, with every expected worker's last heartbeat and backlog
    ("ok", "stale" or "never seen"; "status" is "degraded" unless all are ok), and the dead
    Discord deliveries and key emails that wait for staff, and Discord's standing (a ban or a
    switched-off destination is "degraded"); 503 when the database does not answer."""
    now = timezone.now()
    try:
        workers = worker_states(now)
        dead = Delivery.objects.filter(status="dead").count()
        dead_emails = KeyEmail.objects.filter(status=KeyEmailStatus.DEAD).count()
        discord = {
            **ip_limits.health(now),
            "destinations_disabled": Destination.objects.filter(enabled=False).count(),
        }
    except DatabaseError:
        return JsonResponse({"database": "down"}, status=503)
    for worker in workers.values():
        worker["seen_at"] = worker["seen_at"].isoformat() if worker["seen_at"] else None
    # A ban or a switched-off destination holds notifications back until someone acts.
    healthy = all(worker["state"] == "ok" for worker in workers.values()) and not (
        discord["state"] == "banned" or discord["destinations_disabled"]
    )
    return JsonResponse(
        {
            "status": "ok" if healthy else "degraded",
            "database": "ok",
            "workers": workers,
            "outbox_dead": dead,
            "key_emails_dead": dead_emails,
            "discord": discord,
        }
    )
