"""Payment gateways behind one small interface: Stripe, or the offline test gateway."""

from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings


@dataclass(frozen=True)
class LineItem:
    name: str
    unit_amount: int
    quantity: int


class GatewayError(Exception):
    """A gateway call failed. `message` is safe to show a customer; it never holds a secret."""

    def __init__(self, message: str, *, code: str = "gateway_error") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# Stripe's refusals of a refund (its error codes), in words staff can act on. Stripe answered:
# the request's outcome is known, so the next one gets a new Idempotency-Key.
REFUSED_REFUNDS = {
    "charge_disputed": (
        "Stripe refuses: this payment has a chargeback open. Answer the dispute in the Stripe "
        "Dashboard; a lost chargeback already gives the money back to the customer."
    ),
    "charge_already_refunded": "Stripe says this payment is already refunded in full.",
    "amount_too_large": (
        "Stripe refuses: the refund is more than is left of the payment (a refund made in the "
        "Stripe Dashboard may not have reached the shop yet). Reload the order and check."
    ),
}
# Stripe may or may not have made the refund: retry with the same Idempotency-Key.
UNKNOWN_OUTCOME = {"stripe_unreachable", "stripe_unavailable", "stripe_busy"}


class Gateway(Protocol):
    livemode: bool

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
    ) -> dict[str, Any]: ...

    def retrieve_session(self, session_id: str) -> dict[str, Any]: ...

    def expire_session(self, session_id: str) -> None: ...

    def create_refund(
        self,
        *,
        payment_intent: str,
        amount: int,
        idempotency_key: str,
        metadata: dict[str, str],
        reason: str = "requested_by_customer",
    ) -> dict[str, Any]: ...

    def list_events(self, *, created_gte: int, delivery_success: bool | None = None) -> Any: ...


def get_gateway() -> Gateway:
    if settings.STRIPE_SECRET_KEY:
        from .stripe import StripeGateway

        return StripeGateway()
    from .offline import OfflineGateway

    return OfflineGateway()


def livemode_expected() -> bool:
    return settings.STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_"))


def is_offline() -> bool:
    return not settings.STRIPE_SECRET_KEY
