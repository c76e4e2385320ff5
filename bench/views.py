"""The two endpoints POST /stripe/webhook/ is measured against (bench/webhook_throughput.py).

`bare` is the ceiling: Django, the signature check and a 200. `minimal` is the floor any correct
handler pays: the same check, then, in one transaction, the event id stored uniquely and the
order row locked and updated. Neither is mounted by the shop itself.
"""

import uuid

from django.contrib.auth.decorators import login_not_required
from django.db import connection, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from orders.webhooks import WebhookError, verify

# Created by the benchmark script, not by a migration: it exists only in the bench database.
EVENT_TABLE = "bench_webhook_event"


@login_not_required
@csrf_exempt
@require_POST
def bare(request: HttpRequest) -> JsonResponse:
    try:
        verify(request.body, request.headers.get("Stripe-Signature"))
    except WebhookError as error:
        return JsonResponse({"error": str(error)}, status=400)
    return JsonResponse({"received": True})


@login_not_required
@csrf_exempt
@require_POST
def minimal(request: HttpRequest) -> JsonResponse:
    try:
        event = verify(request.body, request.headers.get("Stripe-Signature"))
    except WebhookError as error:
        return JsonResponse({"error": str(error)}, status=400)
    order_id = uuid.UUID(event["data"]["object"]["client_reference_id"])
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {EVENT_TABLE} (id, type, received_at) VALUES (%s, %s, now())"
            " ON CONFLICT (id) DO NOTHING RETURNING id",
            [event["id"], event["type"]],
        )
        if cursor.fetchone() is None:
            return JsonResponse({"received": True, "outcome": "duplicate"})
        cursor.execute("SELECT id FROM orders_order WHERE public_id = %s FOR UPDATE", [order_id])
        row = cursor.fetchone()
        if row is None:
            return JsonResponse({"received": True, "outcome": "unknown_order"})
        cursor.execute(
            "UPDATE orders_order SET status = 'completed', paid_at = now(), updated_at = now()"
            " WHERE id = %s",
            [row[0]],
        )
    return JsonResponse({"received": True, "outcome": "applied"})
