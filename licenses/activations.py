"""Activations: the devices a license runs on, at most `max_activations` at a time.

Every change takes the license's row lock first (SELECT … FOR UPDATE on PostgreSQL; SQLite's
IMMEDIATE transactions already run one writer at a time), so the count and the insert that
depends on it are never interleaved with another request's: the limit holds under any
concurrency. The partial unique constraint on (license, fingerprint_hash) backs it up for one
device activated twice at once.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from shop.rows import insert

from .keys import hash_fingerprint
from .models import Activation, ActivationEnd, License, LicenseStatus
from .signals import activation_limit_reached
from .statements import Terms, count_devices, lock_license

DEACTIVATION_WINDOW = timedelta(days=30)
# A validate call moves an activation's `last_seen_at` only when it is older than this: a write
# per check would cost more than the check.
LAST_SEEN_RESOLUTION = timedelta(hours=1)
LIMIT_REACHED_EVERY = timedelta(days=1)
REFUSED_CODES = {
    LicenseStatus.SUSPENDED: "SUSPENDED",
    LicenseStatus.REVOKED: "REVOKED",
    LicenseStatus.PENDING: "PENDING",
}
# Deactivations counted against LICENSE_DEACTIVATIONS_PER_30_DAYS: the ones whoever holds the key
# makes. Staff resets and revocations are not churn.
COUNTED = (ActivationEnd.CLIENT, ActivationEnd.CUSTOMER)


class ActivationRefused(Exception):
    """`code` is the API's answer; `retry_after` (seconds) when waiting will help; `terms` and
    `used`, the license and its active activations, when it was found."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retry_after: int | None = None,
        terms: "Terms | None" = None,
        used: int = 0,
    ) -> None:
        super().__init__(message)
        self.code, self.retry_after, self.terms, self.used = code, retry_after, terms, used


@dataclass(frozen=True)
class Activated:
    license: "Terms"  # as read under its lock
    activation: Activation
    created: bool  # False: the device was already active (the same activation)
    used: int  # the license's active activations, this one included


def license_code(status: str, expires_at: datetime | None, now: datetime) -> str:
    """What the license itself says, before any device is asked about: VALID, SUSPENDED,
    REVOKED, PENDING or EXPIRED (in that order: a revoked license is revoked, expired or not)."""
    if status != LicenseStatus.ACTIVE:
        return REFUSED_CODES[status]
    if expires_at is not None and expires_at <= now:
        return "EXPIRED"
    return "VALID"


def active_activations(license: License):
    return Activation.objects.filter(license=license, deactivated_at=None)


def activate(license: License, *, fingerprint: str, label: str = "") -> Activated:
    """Activate `license` on the device `fingerprint` (idempotent: an active device gets its
    own activation back, its label and last-seen time refreshed). Raises ActivationRefused
    with the license's code, or TOO_MANY_ACTIVATIONS when every activation is in use."""
    return activate_key(pk=license.pk, product=None, fingerprint=fingerprint, label=label)


@transaction.atomic
def activate_key(
    *,
    key_hash: str | None = None,
    pk: int | None = None,
    product: str | None,
    fingerprint: str,
    label: str = "",
) -> Activated:
    """activate() for the API: the license found by its key's hash under its lock, in the same
    statement. NOT_FOUND and PRODUCT_MISMATCH (when `product` is given) come first."""
    now = timezone.now()
    terms = lock_license(pk=pk, key_hash=key_hash)
    if terms is None or (product is not None and terms.product != product):
        code = "NOT_FOUND" if terms is None else "PRODUCT_MISMATCH"
        raise ActivationRefused(code, "No such license for this product.")
    digest = hash_fingerprint(fingerprint)
    code = license_code(terms.status, terms.expires_at, now)
    if code != "VALID":
        used, _ = count_devices(terms.id, digest)
        raise ActivationRefused(code, f"The license is {code.lower()}.", terms=terms, used=used)
    used, existing = count_devices(terms.id, digest)
    if existing is not None:
        Activation.objects.filter(pk=existing).update(last_seen_at=now, **_relabel(label))
        return Activated(terms, Activation.objects.get(pk=existing), False, used)
    if terms.max_activations is not None and used >= terms.max_activations:
        raise ActivationRefused(
            "TOO_MANY_ACTIVATIONS",
            f"All {terms.max_activations} activations are in use: deactivate a device first.",
            terms=terms,
            used=used,
        )
    activation = insert(
        Activation(license_id=terms.id, fingerprint_hash=digest, label=label, last_seen_at=now)
    )
    used += 1
    if used == terms.max_activations:
        _tell_limit_reached(terms, activation, now)
    return Activated(terms, activation, True, used)


def _relabel(label: str) -> dict[str, str]:
    return {"label": label} if label else {}


def _tell_limit_reached(terms: Terms, activation: Activation, now: datetime) -> None:
    """At most once a day per license: a customer who swaps devices at the limit is news once."""
    if terms.limit_reached_at and now - terms.limit_reached_at < LIMIT_REACHED_EVERY:
        return
    License.objects.filter(pk=terms.id).update(limit_reached_at=now)
    license = License.objects.select_related("order", "product").get(pk=terms.id)
    activation_limit_reached.send(sender=License, license=license, activation=activation)


def touch(activation_id: int, seen_at: datetime | None, now: datetime) -> None:
    """Record that an active device checked its license (validate), at most once an hour."""
    if seen_at is None or now - seen_at >= LAST_SEEN_RESOLUTION:
        Activation.objects.filter(pk=activation_id).update(last_seen_at=now)


def _ended_by(by) -> str:
    if by is None:
        return ActivationEnd.CLIENT
    return ActivationEnd.STAFF if by.is_staff else ActivationEnd.CUSTOMER


def deactivation_refusal(activation: Activation, *, by=None) -> str:
    """Why `by` (None: whoever holds the key, through the API) may not deactivate it now, in
    words; empty when they may."""
    if activation.deactivated_at is not None or _ended_by(by) not in COUNTED:
        return ""
    if _churn_wait(activation.license_id, timezone.now()) is None:
        return ""
    return f"{_churned()}: try again later."


def _churned() -> str:
    limit = settings.LICENSE_DEACTIVATIONS_PER_30_DAYS
    return f"This license was deactivated on {limit} devices in the last 30 days"


def _churn_wait(license_id: int, now: datetime) -> timedelta | None:
    """How long until the license's holder may deactivate again (None: now): the churn limit,
    counted over the 30 days before `now`."""
    limit = settings.LICENSE_DEACTIVATIONS_PER_30_DAYS
    recent = sorted(
        Activation.objects.filter(
            license_id=license_id, ended__in=COUNTED, deactivated_at__gt=now - DEACTIVATION_WINDOW
        ).values_list("deactivated_at", flat=True)
    )
    if len(recent) < limit:
        return None
    return recent[len(recent) - limit] + DEACTIVATION_WINDOW - now  # the oldest that counts


@transaction.atomic
def deactivate(activation: Activation, *, by=None) -> Activation:
    """End `activation` (idempotent: an ended one stays as it ended). `by` is None for the API
    (the key's holder), the customer on /account, or staff; only the first two count against
    LICENSE_DEACTIVATIONS_PER_30_DAYS, and over it ActivationRefused(TOO_MANY_DEACTIVATIONS)
    says when the oldest counted one leaves the 30 days."""
    lock_license(pk=activation.license_id)
    activation = Activation.objects.get(pk=activation.pk)
    if activation.deactivated_at is not None:
        return activation
    now, ended = timezone.now(), _ended_by(by)
    wait = _churn_wait(activation.license_id, now) if ended in COUNTED else None
    if wait is not None:
        raise ActivationRefused(
            "TOO_MANY_DEACTIVATIONS",
            f"{_churned()}.",
            retry_after=max(1, int(wait.total_seconds() + 0.999)),
        )
    activation.deactivated_at, activation.ended = now, ended
    activation.ended_by = by
    activation.save(update_fields=["deactivated_at", "ended", "ended_by"])
    return activation


@transaction.atomic
def reset_activations(license: License, *, by) -> int:
    """Staff: end every active activation of `license` (a customer locked out of their own
    devices). Not counted against the deactivation limit. Returns how many were ended."""
    lock_license(pk=license.pk)
    return active_activations(license).update(
        deactivated_at=timezone.now(), ended=ActivationEnd.STAFF, ended_by=by
    )


def end_revoked_activations(order_id: int, now: datetime) -> int:
    """End the activations of the order's revoked licenses: in the revocation's transaction
    (revoke_all), so no device keeps a license that a refund or a lost chargeback took back."""
    return Activation.objects.filter(
        license__order_id=order_id, license__status=LicenseStatus.REVOKED, deactivated_at=None
    ).update(deactivated_at=now, ended=ActivationEnd.REVOKED)
