from datetime import timedelta

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from notifications.models import Delivery, WorkerHeartbeat

STALE = timedelta(seconds=60)


@login_not_required
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the database answers (with the delivery worker's heartbeat and the outbox
    backlog, for monitoring), 503 when it does not."""
    try:
        beat = (
            WorkerHeartbeat.objects.order_by("-seen_at").values_list("seen_at", flat=True).first()
        )
        backlog = Delivery.objects.filter(status="pending", destination__enabled=True).count()
        dead = Delivery.objects.filter(status="dead").count()
    except DatabaseError:
        return JsonResponse({"database": "down"}, status=503)
    worker = "never seen" if beat is None else ("ok" if timezone.now() - beat < STALE else "stale")
    return JsonResponse(
        {
            "database": "ok",
            "worker": worker,
            "worker_seen_at": beat.isoformat() if beat else None,
            "outbox_backlog": backlog,
            "outbox_dead": dead,
        }
    )
