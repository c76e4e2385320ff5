"""The two endpoints POST /stripe/webhook/ is measured against (bench/webhook_throughput.py).

`bare` is the ceiling: Django, the signature check and a 200. `minimal` is the floor any correct
handler pays: the same check, then, in one transaction, the event id stored uniquely and the
order row locked and updated (found by its public id for a payment, by its PaymentIntent for a
refund or dispute). Neither is mounted by the shop itself.
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
    obj = event["data"]["object"]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {EVENT_TABLE} (id, type, received_at) VALUES (%s, %s, now())"
            " ON CONFLICT (id) DO NOTHING RETURNING id",
            [event["id"], event["type"]],
        )
        if cursor.fetchone() is None:
            return JsonResponse({"received": True, "outcome": "duplicate"})
        if obj["object"] == "checkout.session":
            where, key = "public_id", uuid.UUID(obj["client_reference_id"])
        else:  # a refund or dispute finds its order by the PaymentIntent the payment taught it
            where, key = "stripe_payment_intent_id", obj["payment_intent"]
        cursor.execute(f"SELECT id FROM orders_order WHERE {where} = %s FOR UPDATE", [key])
        row = cursor.fetchone()
        if row is None:
            return JsonResponse({"received": True, "outcome": "unknown_order"})
        if obj["object"] == "checkout.session":
            cursor.execute(
                "UPDATE orders_order SET status = 'completed', paid_at = now(), updated_at = now(),"
                " stripe_payment_intent_id = %s WHERE id = %s",
                [obj["payment_intent"], row[0]],
            )
        else:
            status = "refunded" if obj["object"] == "charge" else "disputed"
            cursor.execute(
                "UPDATE orders_order SET status = %s, updated_at = now() WHERE id = %s",
                [status, row[0]],
            )
    return JsonResponse({"received": True, "outcome": "applied"})
