"""What people do to licenses, as commands (audit.commands): suspend, reinstate, reveal a key,
resend an order's keys (staff, or the customer from /account), import pool keys, and send a dead
key email again."""

from django.conf import settings

from audit.commands import Command, Refused
from orders.checkout import start_checkout
from orders.gateways import GatewayError
from orders.models import LicenseKind, Order, Product
from shop.ratelimit import hit

from . import activations, lifecycle
from .emails import resend_keys
from .models import Activation, KeyEmail, KeyEmailStatus, License, LicenseStatus
from .pool import import_keys
from .renewals import start_renewal, waiting_renewal


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
        # A refunded order's keys are revoked for good: no button, not even a disabled one.
        return any(license.status != LicenseStatus.REVOKED for license in _keyed(order))

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


class ResetActivations(LicenseCommand):
    """Staff end every device's activation of a license (a customer locked out of their own
    devices); not counted against the customer's deactivation limit."""

    name, label = "licenses.reset_activations", "Reset devices"
    permission = "licenses.reset_activations"

    def applies(self, license: License) -> bool:
        return any(a.deactivated_at is None for a in license.activations.all())

    def why_not(self, license: License, *, by) -> str | None:
        if not self.applies(license):
            return "No device is activated with this license."
        return None

    def act(self, license: License, *, by) -> int:
        return activations.reset_activations(license, by=by)

    def detail_of(self, license, ended, **params) -> str:
        return f"{ended} device(s) deactivated"


class DeactivateDevice(Command):
    """The customer frees a device's activation from /account (a computer replaced or sold),
    within the deactivation limit per 30 days."""

    name, label, permission = "licenses.deactivate_device", "Deactivate", None
    model = Activation

    def lock(self, activation: Activation) -> Activation:
        return Activation.objects.select_related("license__order", "license__product").get(
            pk=activation.pk
        )  # activations.deactivate takes the license's lock

    def order_of(self, activation: Activation):
        return activation.license.order

    def target_of(self, activation: Activation) -> str:
        return (
            f"device {activation.label or activation.public_id} of license {activation.license_id}"
        )

    def why_not(self, activation: Activation, *, by) -> str | None:
        if activation.license.order.email != getattr(by, "email", None):
            return "This device is not on one of your licenses."
        if activation.deactivated_at is not None:
            return "This device is deactivated already."
        return activations.deactivation_refusal(activation, by=by) or None

    def act(self, activation: Activation, *, by) -> Activation:
        try:
            return activations.deactivate(activation, by=by)
        except activations.ActivationRefused as refused:
            raise Refused(str(refused)) from None


class Renew(LicenseCommand):
    """The customer buys more time for a license that expires (or has): a renewal order for the
    same product, paid through Checkout, that extends the same key (licenses.renewals)."""

    name, label, permission = "licenses.renew", "Renew", None

    def applies(self, license: License) -> bool:
        return license.expires_at is not None and license.status == LicenseStatus.ACTIVE

    def why_not(self, license: License, *, by) -> str | None:
        if license.order.email != getattr(by, "email", None):
            return "This license is not yours."
        if license.expires_at is None:
            return "This license never expires: there is nothing to renew."
        if license.status != LicenseStatus.ACTIVE:
            return f"A {license.status} license cannot be renewed."
        if not license.product.active:
            return f"{license.product} is no longer sold."
        if not license.product.license_days:
            return f"{license.product}'s licenses no longer expire: ask us to extend yours."
        if waiting_renewal(license):
            return "A renewal of this license is waiting for its payment: see your orders."
        return None

    def run(self, license: License, *, by) -> str:
        renewal = super().run(license, by=by)
        try:
            return start_checkout(renewal)
        except GatewayError as error:  # the renewal order is recorded failed, payable again
            self.refused(license, by=by, words=error.message, code=error.code)

    def act(self, license: License, *, by):
        return start_renewal(license, by=by)

    def detail_of(self, license, renewal, **params) -> str:
        return f"renewal order {renewal.number}"


suspend = Suspend()
reinstate = Reinstate()
reveal_key = RevealKey()
resend_order_keys = ResendKeys()
resend_my_keys = ResendMyKeys()
import_pool_keys = ImportKeys()
send_key_email_again = SendKeyEmailAgain()
reset_activations = ResetActivations()
deactivate_device = DeactivateDevice()
renew = Renew()
