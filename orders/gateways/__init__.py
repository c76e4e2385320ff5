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
        self, *, payment_intent: str, amount: int, idempotency_key: str, metadata: dict[str, str]
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
