"""Bodies signed as Stripe signs its webhook deliveries, for the test client and for HTTP
clients alike."""

import json
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.test import Client


def body(event: dict[str, Any]) -> bytes:
    """The event as Stripe sends it: pretty-printed JSON."""
    return json.dumps(event, indent=2).encode()


def signature(body: bytes, secret: str | None = None, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header for `body`, by `secret` (default STRIPE_WEBHOOK_SECRET)."""
    # Imported here: the benchmarks import the kit before they set Django up.
    from orders.webhooks import sign_payload

    return sign_payload(body, secret or settings.STRIPE_WEBHOOK_SECRET, timestamp)


def signed_post(
    client: Client,
    event: dict[str, Any] | bytes,
    *,
    secret: str | None = None,
    timestamp: int | None = None,
) -> HttpResponse:
    """POST `event` (or a body as it is) to the webhook through Django's test `client`."""
    data = event if isinstance(event, bytes) else json.dumps(event).encode()
    return client.post(
        "/stripe/webhook/",
        data,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature(data, secret, timestamp),
    )
