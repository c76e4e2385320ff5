"""What people do to licenses, as commands (audit.commands): suspend, reinstate, reveal a key,
resend an order's keys (staff, or the customer from /account), import pool keys, and send a dead
key email again."""

from django.conf import settings

from audit.commands import Command, Refused
from orders.models import LicenseKind, Order, Product
from shop.ratelimit import hit

from . import lifecycle
from .emails import resend_keys
from .models import KeyEmail, KeyEmailStatus, License, LicenseStatus
from .pool import import_keys


class LicenseCommand(Command):
    model = License

    def lock(self, license: License) -> License:
        return (
            License.objects.select_for_update()
            .select_related("product", "order")
            .get(pk=license.pk)
        )

    def target_of(self, license: License) -> str:
        return f"license {license.pk} ({license.product}, key {license.masked_key or 'none'})"


class Suspend(LicenseCommand):
    """A staff suspension: the key stops validating; a won dispute never lifts it."""

    name, label, permission = "licenses.suspend", "Suspend", "licenses.suspend_license"

    def applies(self, license: License) -> bool:
        return license.status in (LicenseStatus.ACTIVE, LicenseStatus.PENDING)

    def why_not(self, license: License, *, by) -> str | None:
        if license.status == LicenseStatus.REVOKED:
            return "A revoked license stays revoked."
        if license.status == LicenseStatus.SUSPENDED:
            return "This license is suspended already."
        return None

    def act(self, license: License, *, by) -> License:
        return lifecycle.suspend_license(license, staff=by)


class Reinstate(LicenseCommand):
    name, label, permission = "licenses.reinstate", "Reinstate", "licenses.reinstate_license"

    def applies(self, license: License) -> bool:
        return license.status == LicenseStatus.SUSPENDED

    def why_not(self, license: License, *, by) -> str | None:
        if license.status != LicenseStatus.SUSPENDED:
            return f"Only a suspended license can be reinstated; this one is {license.status}."
        return None

    def act(self, license: License, *, by) -> License:
        return lifecycle.reinstate_license(license, staff=by)


class RevealKey(LicenseCommand):
    """The full key, shown to staff once per POST; who looked is recorded."""

    name, label, permission = "licenses.reveal_key", "Show key", "licenses.reveal_key"

    def applies(self, license: License) -> bool:
        return bool(license.key)

    def why_not(self, license: License, *, by) -> str | None:
        return None if license.key else "This license has no key yet."

    def act(self, license: License, *, by) -> str:
        return license.key

    def target_of(self, license: License) -> str:
        return f"license {license.pk}"


def _keyed(order: Order) -> list[License]:
    # .all(): a page that prefetched the order's licenses answers from them, with no query.
    return [license for license in order.licenses.all() if license.key]


def _keys_to_send(order: Order) -> str | None:
    """Why the order has no keys email to send, or None."""
    keyed = _keyed(order)
    if not keyed:
        return "This order has no keys to send yet."
    if not any(license.status == LicenseStatus.ACTIVE for license in keyed):
        return "This order's keys no longer work (revoked or suspended): there is nothing to send."
    return None


class ResendKeys(Command):
    """Staff send an order's keys email again."""

    name, label, permission = "licenses.resend_keys", "Resend keys", "licenses.resend_keys"
    model = Order

    def lock(self, order: Order) -> Order:
        return Order.objects.select_for_update(no_key=True).get(pk=order.pk)

    def order_of(self, order: Order) -> Order:
        return order

    def applies(self, order: Order) -> bool:
        return bool(_keyed(order))

    def why_not(self, order: Order, *, by) -> str | None:
        return _keys_to_send(order)

    def act(self, order: Order, *, by) -> None:
        resend_keys(order, by=by)


class ResendMyKeys(ResendKeys):
    """The customer asks for their keys email again, a few times an hour at most per order (the
    button must not become a way to flood a mailbox)."""

    name, label, permission = "licenses.resend_my_keys", "Email me my keys again", None

    def why_not(self, order: Order, *, by) -> str | None:
        if order.email != getattr(by, "email", None):
            return "This order is not yours."
        return _keys_to_send(order)

    def act(self, order: Order, *, by) -> None:
        wait = hit(
            "account-resend-keys",
            order.number,
            limit=settings.ACCOUNT_RESEND_KEYS_RATE,
            window=settings.ACCOUNT_RESEND_KEYS_WINDOW,
        )
        if wait:
            minutes = max(1, round(wait / 60))
            raise Refused(
                f"Your keys were sent several times already; you can ask again in {minutes} minutes."
            )
        resend_keys(order, by=by)


class ImportKeys(Command):
    """A vendor's keys into a pool product's stock; duplicates skipped; licenses waiting for a
    key get one, oldest first."""

    name, label, permission = "licenses.import_keys", "Import keys", "licenses.import_keys"
    model = Product

    def why_not(self, product: Product, *, by) -> str | None:
        if product.license_kind != LicenseKind.POOL:
            return f"{product} does not sell pool keys."
        return None

    def target_of(self, product: Product) -> str:
        return str(product)

    def act(self, product: Product, *, by, keys: list[str]) -> tuple[int, int]:
        return import_keys(product, keys)

    def detail_of(self, product, result, **params) -> str:
        imported, skipped = result
        return f"{imported} imported, {skipped} duplicate(s) or blank(s) skipped"


class SendKeyEmailAgain(Command):
    """A dead key email (its attempts used up while the mail server was away) is queued again."""

    name, label, permission = "licenses.send_key_email_again", "Send again", "licenses.resend_keys"
    model = KeyEmail

    def order_of(self, email: KeyEmail) -> Order:
        return email.order

    def target_of(self, email: KeyEmail) -> str:
        return f"key email {email.pk}"

    def applies(self, email: KeyEmail) -> bool:
        return email.status == KeyEmailStatus.DEAD

    def why_not(self, email: KeyEmail, *, by) -> str | None:
        return None if email.status == KeyEmailStatus.DEAD else "Only a dead email is sent again."

    def act(self, email: KeyEmail, *, by) -> None:
        email.status, email.attempts, email.next_attempt_at = KeyEmailStatus.PENDING, 0, None
        email.save(update_fields=["status", "attempts", "next_attempt_at"])


suspend = Suspend()
reinstate = Reinstate()
reveal_key = RevealKey()
resend_order_keys = ResendKeys()
resend_my_keys = ResendMyKeys()
import_pool_keys = ImportKeys()
send_key_email_again = SendKeyEmailAgain()
