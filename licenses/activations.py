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
from django.db import connection, transaction
from django.utils import timezone

from .keys import hash_fingerprint
from .models import Activation, ActivationEnd, License, LicenseStatus
from .signals import activation_limit_reached

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
    """`code` is the API's answer; `retry_after` (seconds) when waiting will help."""

    def __init__(self, code: str, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code, self.retry_after = code, retry_after


@dataclass(frozen=True)
class Activated:
    license: License  # as read under its lock
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


def _locked(license: License) -> License:
    queryset = License.objects.select_for_update(of=("self",)) if _row_locks() else License.objects
    return queryset.get(pk=license.pk)


def _row_locks() -> bool:
    return connection.features.has_select_for_update


def active_activations(license: License):
    return Activation.objects.filter(license=license, deactivated_at=None)


@transaction.atomic
def activate(license: License, *, fingerprint: str, label: str = "") -> Activated:
    """Activate `license` on the device `fingerprint` (idempotent: an active device gets its
    own activation back, its label and last-seen time refreshed). Raises ActivationRefused
    with the license's code, or TOO_MANY_ACTIVATIONS when every activation is in use."""
    now = timezone.now()
    license = _locked(license)
    code = license_code(license.status, license.expires_at, now)
    if code != "VALID":
        raise ActivationRefused(code, f"The license is {code.lower()}.")
    digest = hash_fingerprint(fingerprint)
    active = active_activations(license)
    existing = active.filter(fingerprint_hash=digest).first()
    used = active.count()
    if existing is not None:
        existing.last_seen_at, existing.label = now, label or existing.label
        existing.save(update_fields=["last_seen_at", "label"])
        return Activated(license, existing, False, used)
    if license.max_activations is not None and used >= license.max_activations:
        raise ActivationRefused(
            "TOO_MANY_ACTIVATIONS",
            f"All {license.max_activations} activations are in use: deactivate a device first.",
        )
    activation = Activation.objects.create(
        license=license, fingerprint_hash=digest, label=label, last_seen_at=now
    )
    used += 1
    if used == license.max_activations:
        _tell_limit_reached(license, activation, now)
    return Activated(license, activation, True, used)


def _tell_limit_reached(license: License, activation: Activation, now: datetime) -> None:
    """At most once a day per license: a customer who swaps devices at the limit is news once."""
    if license.limit_reached_at and now - license.limit_reached_at < LIMIT_REACHED_EVERY:
        return
    license.limit_reached_at = now
    license.save(update_fields=["limit_reached_at"])
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
    limit = settings.LICENSE_DEACTIVATIONS_PER_30_DAYS
    recent = _recent_deactivations(activation.license_id, timezone.now())
    if len(recent) < limit:
        return ""
    return f"This license was deactivated on {limit} devices in the last 30 days: try again later."


def _recent_deactivations(license_id: int, now: datetime) -> list[datetime]:
    ended = Activation.objects.filter(
        license_id=license_id, ended__in=COUNTED, deactivated_at__gt=now - DEACTIVATION_WINDOW
    )
    return sorted(ended.values_list("deactivated_at", flat=True))


@transaction.atomic
def deactivate(activation: Activation, *, by=None) -> Activation:
    """End `activation` (idempotent: an ended one stays as it ended). `by` is None for the API
    (the key's holder), the customer on /account, or staff; only the first two count against
    LICENSE_DEACTIVATIONS_PER_30_DAYS, and over it ActivationRefused(TOO_MANY_DEACTIVATIONS)
    says when the oldest counted one leaves the 30 days."""
    _locked(activation.license)
    activation = Activation.objects.get(pk=activation.pk)
    if activation.deactivated_at is not None:
        return activation
    now, ended = timezone.now(), _ended_by(by)
    if ended in COUNTED:
        recent = _recent_deactivations(activation.license_id, now)
        limit = settings.LICENSE_DEACTIVATIONS_PER_30_DAYS
        if len(recent) >= limit:
            wait = recent[len(recent) - limit] + DEACTIVATION_WINDOW - now
            raise ActivationRefused(
                "TOO_MANY_DEACTIVATIONS",
                f"This license was deactivated on {limit} devices in the last 30 days.",
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
    _locked(license)
    return active_activations(license).update(
        deactivated_at=timezone.now(), ended=ActivationEnd.STAFF, ended_by=by
    )


def end_revoked_activations(order_id: int, now: datetime) -> int:
    """End the activations of the order's revoked licenses: in the revocation's transaction
    (revoke_all), so no device keeps a license that a refund or a lost chargeback took back."""
    return Activation.objects.filter(
        license__order_id=order_id, license__status=LicenseStatus.REVOKED, deactivated_at=None
    ).update(deactivated_at=now, ended=ActivationEnd.REVOKED)
