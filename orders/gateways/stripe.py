"""Stripe through the official SDK, API version pinned, `STRIPE_API_BASE` honoured."""

import logging
from collections.abc import Iterator
from typing import Any

import stripe
from django.conf import settings

from . import REFUSED_REFUNDS, GatewayError, LineItem, livemode_expected

log = logging.getLogger(__name__)


def _client() -> stripe.StripeClient:
    base = settings.STRIPE_API_BASE
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        stripe_version=settings.STRIPE_API_VERSION,
        base_addresses={"api": base} if base else None,
        max_network_retries=1,
        http_client=stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT),
    )


def _translate(error: stripe.StripeError) -> GatewayError:
    """Turn an SDK error into words for a customer; the details go to the log, never a secret."""
    log.warning(
        "stripe error %s (http %s, request %s, code %s)",
        type(error).__name__,
        error.http_status,
        error.request_id,
        error.code,
    )
    if isinstance(error, stripe.CardError):
        return GatewayError(error.user_message or "Your card was declined.", code="card_error")
    if isinstance(error, stripe.APIConnectionError):
        return GatewayError(
            "We could not reach the payment provider. Nothing was charged; please try again.",
            code="stripe_unreachable",
        )
    if isinstance(error, stripe.RateLimitError) or (error.http_status or 0) >= 500:
        return GatewayError(
            "The payment provider is having trouble. Nothing was charged; please try again shortly.",
            code="stripe_unavailable",
        )
    # The SDK raises a bare APIError for a 409 and leaves `code` empty: Stripe's own is in the body.
    body_code = getattr(getattr(error, "error", None), "code", None)
    if error.http_status == 409 and body_code == "idempotency_key_in_use":
        # An earlier request with this key is still in flight (a double submit, another
        # worker): its outcome is unknown, so the next try must keep the key.
        return GatewayError(
            "Stripe is still working on an earlier request for this refund. Try again in a "
            "minute: it cannot be made twice.",
            code="stripe_busy",
        )
    if error.code in REFUSED_REFUNDS:
        return GatewayError(REFUSED_REFUNDS[error.code], code=error.code)
    if error.code == "resource_missing":
        # Callers tell "no such session" (a 404 page) from a refusal, as with the offline gateway.
        return GatewayError("The payment provider has no such object.", code="resource_missing")
    return GatewayError(
        "The payment provider refused this request. Nothing was charged.", code="stripe_refused"
    )


class StripeGateway:
    def __init__(self) -> None:
        self.client = _client()
        self.livemode = livemode_expected()

    def create_session(
        self,
        *,
        order_id: str,
        attempt: int,
        email: str,
        currency: str,
        items: list[LineItem],
        success_url: str,
        cancel_url: str,
        expires_at: int,
    ) -> dict[str, Any]:
        metadata = {"order_id": order_id, "attempt": str(attempt)}
        params = {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": currency,
                        "unit_amount": item.unit_amount,
                        "product_data": {"name": item.name},
                    },
                    "quantity": item.quantity,
                }
                for item in items
            ],
            "client_reference_id": order_id,
            "customer_email": email,
            "metadata": metadata,
            # PaymentIntent events (a declined card) must find the order and its attempt too.
            "payment_intent_data": {"metadata": metadata},
            "success_url": success_url,
            "cancel_url": cancel_url,
            # Short (CHECKOUT_EXPIRES_MINUTES): an abandoned checkout ends as failed ("abandoned")
            # within the hour, not after Stripe's 24 hours of "waiting for the payment".
            "expires_at": expires_at,
        }
        if settings.STRIPE_ALLOW_PROMOTION_CODES:
            # Codes made in the Stripe Dashboard: the session reports the discount it gave.
            params["allow_promotion_codes"] = True
        if settings.STRIPE_AUTOMATIC_TAX:
            # Stripe Tax adds the buyer's tax on top (Checkout asks for the address it needs).
            params["automatic_tax"] = {"enabled": True}
        if settings.STRIPE_INVOICES:
            # The invoice names its order too, so its events find it (orders.invoices).
            params["invoice_creation"] = {"enabled": True, "invoice_data": {"metadata": metadata}}
        return self._call(
            self.client.v1.checkout.sessions.create,
            params,
            {"idempotency_key": f"checkout-{order_id}-{attempt}"},
        )

    def retrieve_session(self, session_id: str) -> dict[str, Any]:
        params = {"expand": ["payment_intent.latest_charge"]}
        return self._call(self.client.v1.checkout.sessions.retrieve, session_id, params)

    def expire_session(self, session_id: str) -> None:
        self._call(self.client.v1.checkout.sessions.expire, session_id)

    def create_refund(
        self,
        *,
        payment_intent: str,
        amount: int,
        idempotency_key: str,
        metadata: dict[str, str],
        reason: str = "requested_by_customer",
    ) -> dict[str, Any]:
        params = {
            "payment_intent": payment_intent,
            "amount": amount,
            "reason": reason,
            "metadata": metadata,
        }
        options = {"idempotency_key": idempotency_key}
        return self._call(self.client.v1.refunds.create, params, options)

    def list_events(
        self, *, created_gte: int, delivery_success: bool | None = None
    ) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"created": {"gte": created_gte}, "limit": 100}
        if delivery_success is not None:
            params["delivery_success"] = delivery_success
        try:
            for event in self.client.v1.events.list(params).auto_paging_iter():
                yield event.to_dict(for_json=True)
        except stripe.StripeError as error:
            raise _translate(error) from error

    @staticmethod
    def _call(method, *args) -> dict[str, Any]:
        try:
            result = method(*args)
        except stripe.StripeError as error:
            raise _translate(error) from error
        return result.to_dict(for_json=True) if result is not None else {}
