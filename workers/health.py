"""GET /healthz: the database, each worker the shop needs in its mode, and their backlogs.

The workers and what they have to do are declared by the apps that own the work (workers.queues);
this module reads them without knowing those apps.
"""

from datetime import datetime, timedelta

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError
from django.db.models import Max
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from . import queues
from .models import Heartbeat

# A worker beats every 5 s; a minute of silence means it is gone or stuck.
STALE = timedelta(seconds=60)


def worker_states(now: datetime) -> dict[str, dict]:
    """Each expected worker: "ok", "stale" or "never seen", its last heartbeat and its backlog
    (/healthz and the /mgmt overview). Raises DatabaseError when the database does not answer."""
    backlogs = {queue.kind: queue.backlog(now) for queue in queues.expected()}
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


def health_report(now: datetime) -> dict:
    """What /healthz answers (and the /mgmt overview's workers card shows): every expected
    worker's last heartbeat and backlog ("ok", "stale" or "never seen"; "status" is "degraded"
    unless all are ok), the dead items that wait for staff (Discord deliveries, key emails), and
    each report the apps declared (Discord's standing: a ban or a switched-off destination is
    "degraded"). Raises DatabaseError when the database does not answer."""
    workers = worker_states(now)
    dead = {queue.dead_as: queue.dead() for queue in queues.declared() if queue.dead}
    reports = {report.name: (report, report.read(now)) for report in queues.reports()}
    # A report's trouble (a ban, a switched-off destination) holds work back until someone acts.
    healthy = all(worker["state"] == "ok" for worker in workers.values()) and all(
        report.healthy(body) for report, body in reports.values()
    )
    return {
        "status": "ok" if healthy else "degraded",
        "database": "ok",
        "workers": workers,
        **dead,
        **{name: body for name, (_, body) in reports.items()},
    }


@login_not_required
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the database answers, with `health_report`; 503 when it does not."""
    try:
        report = health_report(timezone.now())
    except DatabaseError:
        return JsonResponse({"database": "down"}, status=503)
    for worker in report["workers"].values():
        worker["seen_at"] = worker["seen_at"].isoformat() if worker["seen_at"] else None
    return JsonResponse(report)
