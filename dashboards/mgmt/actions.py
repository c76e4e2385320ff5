"""Staff actions on /mgmt: each calls the owning app's function, and records who did it, what,
and whether the shop refused (with the reason), in StaffAction."""

from collections.abc import Callable
from typing import TypeVar

from licenses.emails import resend_keys
from licenses.lifecycle import reinstate_license, suspend_license
from licenses.models import License
from licenses.pool import import_keys
from notifications.destinations import queue_test, set_enabled
from notifications.models import Delivery, Destination
from notifications.outbox import resend
from orders.checkout import (
    OrderActionError,
    complete_order,
    refund_order,
    retry_order,
    settle_refund_failure,
)
from orders.gateways import GatewayError
from orders.models import Order, Product, Refund
from orders.money import format_money

from .models import StaffAction

Kind = StaffAction.Kind
T = TypeVar("T")


class ActionRefused(Exception):
    """The shop would not do it (wrong state, a stale form, Stripe said no): the message says why."""


def record(user, kind: str, *, order: Order | None = None, target: str = "", detail: str = "",
           succeeded: bool = True) -> StaffAction:  # fmt: skip
    return StaffAction.objects.create(
        user=user, kind=kind, order=order, target=target[:255], detail=detail[:500],
        succeeded=succeeded,
    )  # fmt: skip


def _run(user, kind: str, do: Callable[[], T], *, order=None, target="", detail="") -> T:
    try:
        result = do()
    except (OrderActionError, GatewayError, ValueError) as error:
        words = getattr(error, "message", None) or str(error)
        record(user, kind, order=order, target=target, detail=words, succeeded=False)
        raise ActionRefused(words) from None
    record(user, kind, order=order, target=target, detail=detail)
    return result


def complete(order: Order, *, user, note: str) -> None:
    do = lambda: complete_order(order, staff=user, note=note)  # noqa: E731
    _run(user, Kind.COMPLETE, do, order=order, detail=note)


def refund(order: Order, *, user, amount_cents: int, reason: str, seen_returned: int) -> Refund:
    """`seen_returned` is what the confirmation page showed as already refunded: a second click
    (or a second tab) finds it changed and is refused instead of refunding again."""
    amount = format_money(amount_cents, order.currency)
    return _run(
        user,
        Kind.REFUND,
        lambda: refund_order(
            order,
            staff=user,
            amount_cents=amount_cents,
            reason=reason,
            expected_refunded_cents=seen_returned,
        ),
        order=order,
        detail=f"{amount}: {reason}",
    )


def retry(order: Order, *, user) -> str:
    return _run(user, Kind.RETRY, lambda: retry_order(order, staff=user), order=order)


def resend_order_keys(order: Order, *, user) -> None:
    _run(user, Kind.RESEND_KEYS, lambda: resend_keys(order, staff=user), order=order)


def settle(order: Order, *, user) -> None:
    _run(user, Kind.SETTLE_REFUND, lambda: settle_refund_failure(order, staff=user), order=order)


def resend_delivery(delivery: Delivery, *, user) -> None:
    def do() -> None:
        if not resend(Delivery.objects.filter(pk=delivery.pk)):
            raise ValueError("This message is already waiting to be sent.")

    target = f"delivery {delivery.pk} to {delivery.destination}"
    _run(user, Kind.RESEND_NOTIFICATION, do, order=delivery.notification.order, target=target)


def change_license(license: License, *, user, suspend: bool) -> None:
    change = suspend_license if suspend else reinstate_license
    kind = Kind.SUSPEND_LICENSE if suspend else Kind.REINSTATE_LICENSE
    target = f"license {license.pk} ({license.product}, key {license.masked_key or 'none'})"
    _run(user, kind, lambda: change(license, staff=user), order=license.order, target=target)


def reveal_key(license: License, *, user) -> str:
    record(user, Kind.REVEAL_KEY, order=license.order, target=f"license {license.pk}")
    return license.key


def import_pool_keys(product: Product, keys: list[str], *, user) -> tuple[int, int]:
    imported, skipped = import_keys(product, keys)
    detail = f"{imported} imported, {skipped} duplicate(s) or blank(s) skipped"
    record(user, Kind.IMPORT_KEYS, target=str(product), detail=detail)
    return imported, skipped


def switch_destination(destination: Destination, *, user, enabled: bool) -> None:
    kind = Kind.ENABLE_DESTINATION if enabled else Kind.DISABLE_DESTINATION
    set_enabled(destination, enabled=enabled)
    record(user, kind, target=str(destination))


def test_destination(destination: Destination, *, user) -> None:
    sent_by = f"{user.email} on /mgmt"
    do = lambda: queue_test(destination, sent_by=sent_by)  # noqa: E731
    _run(user, Kind.TEST_NOTIFICATION, do, target=str(destination))
