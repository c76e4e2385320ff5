"""The licenses app's written-out SQL, each statement beside the ORM query it replaces.

The license API answers every check with these, and the webhook moves an order's licenses with
them: building the ORM's queries cost more CPU than running them (bench/validate_throughput.py,
docs/benchmarks.md). Each `name` has its twin `name_orm`, the query as the ORM writes it:
tests/test_statements.py runs both on the same rows, on SQLite and PostgreSQL, and compares what
they read or write. Change one, change the other.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.db.models import Count, Q, Subquery, Value
from django.db.models.functions import Coalesce

from orders import disputes
from orders.models import Dispute, Product

from .models import Activation, License, LicenseStatus, SuspensionReason

_license, _product = License._meta.db_table, Product._meta.db_table
_activation = Activation._meta.db_table
# The license API's look-ups. key_hash is unique, and a device has at most one active activation
# per license: one row at most. Their columns, in this order: id, public_id, status, expires_at,
# max_activations, the product's slug, active activations; then, with a device, its activation's
# id, public_id and last_seen_at (None when the device is not active).
_COLUMNS = (
    "l.id, l.public_id, l.status, l.expires_at, l.max_activations, p.slug,"
    f" (SELECT COUNT(*) FROM {_activation} c WHERE c.license_id = l.id"
    " AND c.deactivated_at IS NULL)"
)
_FROM = f"FROM {_license} l JOIN {_product} p ON p.id = l.product_id"
_LOOKUP = f"SELECT {_COLUMNS} {_FROM} WHERE l.key_hash = %s"
_LOOKUP_DEVICE = (
    f"SELECT {_COLUMNS}, d.id, d.public_id, d.last_seen_at {_FROM}"
    f" LEFT JOIN {_activation} d ON d.license_id = l.id AND d.fingerprint_hash = %s"
    " AND d.deactivated_at IS NULL WHERE l.key_hash = %s"
)


def uuid_text(value: Any) -> str:
    """A UUID column as text: PostgreSQL hands a written-out SELECT a UUID, SQLite its hex."""
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(value))


def aware(value: datetime | None) -> datetime | None:
    """A datetime column, aware: SQLite hands a written-out SELECT naive UTC datetimes,
    PostgreSQL aware ones."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _fetch_one(sql: str, params: list[Any]) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def find_license(key_hash: str) -> tuple | None:
    """The license with this key hash, its product's slug and its active activations, as a
    row (see _COLUMNS; public_id and expires_at raw: `uuid_text`, `aware`):
    `License.objects.select_related("product").annotate(used=Count("activations",
    filter=Q(activations__deactivated_at=None))).filter(key_hash=...).first()`."""
    return _fetch_one(_LOOKUP, [key_hash])


def find_license_orm(key_hash: str) -> tuple | None:
    used = Count("activations", filter=Q(activations__deactivated_at=None))
    found = License.objects.select_related("product").annotate(used=used)
    license = found.filter(key_hash=key_hash).first()
    if license is None:
        return None
    return (
        license.pk, license.public_id, license.status, license.expires_at,
        license.max_activations, license.product.slug, license.used,
    )  # fmt: skip


def find_license_with_device(key_hash: str, fingerprint_hash: str) -> tuple | None:
    """`find_license`, and the device's active activation (id, public_id, last_seen_at; None
    each when it has none): the same, then `Activation.objects.filter(license=...,
    fingerprint_hash=..., deactivated_at=None).first()`."""
    return _fetch_one(_LOOKUP_DEVICE, [fingerprint_hash, key_hash])


def find_license_with_device_orm(key_hash: str, fingerprint_hash: str) -> tuple | None:
    found = find_license_orm(key_hash)
    if found is None:
        return None
    device = Activation.objects.filter(
        license_id=found[0], fingerprint_hash=fingerprint_hash, deactivated_at=None
    ).first()
    return (*found, *((device.pk, device.public_id, device.last_seen_at) if device else [None] * 3))


@dataclass(frozen=True)
class Terms:
    """A license as its row lock found it: what activating needs and answers with."""

    id: int
    public_id: str
    status: str
    expires_at: datetime | None
    max_activations: int | None
    limit_reached_at: datetime | None
    product: str  # the product's slug


def _row_locks() -> bool:
    return connection.features.has_select_for_update  # SQLite: IMMEDIATE transactions


def lock_license(*, pk: int | None = None, key_hash: str | None = None) -> Terms | None:
    """Lock the license (by primary key or key hash) for the rest of the transaction and read
    it: `License.objects.select_for_update(of=("self",)).select_related("product")
    .filter(...).first()`, which every activation and deactivation runs first."""
    column, value = ("id", pk) if pk is not None else ("key_hash", key_hash)
    quote = connection.ops.quote_name
    lock = " FOR UPDATE OF l" if _row_locks() else ""
    sql = (
        "SELECT l.id, l.public_id, l.status, l.expires_at, l.max_activations,"
        f" l.limit_reached_at, p.slug FROM {quote(_license)} l"
        f" JOIN {quote(_product)} p ON p.id = l.product_id"
        f" WHERE l.{column} = %s{lock}"
    )
    row = _fetch_one(sql, [value])
    if row is None:
        return None
    id_, public_id, status, expires_at, limit, reached_at, slug = row
    return Terms(
        id_, uuid_text(public_id), status, aware(expires_at), limit, aware(reached_at), slug
    )


def lock_license_orm(*, pk: int | None = None, key_hash: str | None = None) -> Terms | None:
    found = License.objects.select_for_update(of=("self",)) if _row_locks() else License.objects
    lookup = {"pk": pk} if pk is not None else {"key_hash": key_hash}
    license = found.select_related("product").filter(**lookup).first()
    if license is None:
        return None
    return Terms(
        license.pk, str(license.public_id), license.status, license.expires_at,
        license.max_activations, license.limit_reached_at, license.product.slug,
    )  # fmt: skip


def count_devices(license_id: int, digest: str) -> tuple[int, int | None]:
    """(active activations of the license, the id of the one of device `digest` or None), in one
    statement: the twin's count() and first() in one."""
    sql = (
        "SELECT COUNT(*), MAX(CASE WHEN fingerprint_hash = %s THEN id END)"
        f" FROM {connection.ops.quote_name(_activation)}"
        " WHERE license_id = %s AND deactivated_at IS NULL"
    )
    used, existing = _fetch_one(sql, [digest, license_id])
    return used, existing


def count_devices_orm(license_id: int, digest: str) -> tuple[int, int | None]:
    active = Activation.objects.filter(license_id=license_id, deactivated_at=None)
    existing = active.filter(fingerprint_hash=digest).values_list("pk", flat=True).first()
    return active.count(), existing


def _open_statuses() -> list[str]:
    return [*disputes.OPEN_RANK, *disputes.APPEAL_RANK]


def suspend_for_dispute(order_id: int, now: datetime) -> int:
    """Suspend the order's active and pending licenses with the id of its first open dispute,
    found by the same UPDATE (a subquery); how many: `License.objects.filter(order_id=...,
    status__in=[ACTIVE, PENDING]).update(..., dispute_id=Coalesce(Subquery(...), Value("")))`."""
    open_statuses = _open_statuses()
    suspended_at = License._meta.get_field("suspended_at")
    quote = connection.ops.quote_name
    sql = (
        f"UPDATE {quote(_license)} SET status = %s, reason = %s,"
        " suspended_at = %s, dispute_id = COALESCE(("
        f"SELECT stripe_dispute_id FROM {quote(Dispute._meta.db_table)} WHERE order_id = %s"
        f" AND status IN ({', '.join(['%s'] * len(open_statuses))})"
        " ORDER BY created_at, id LIMIT 1), '')"
        " WHERE order_id = %s AND status IN (%s, %s)"
    )
    params = [
        LicenseStatus.SUSPENDED,
        SuspensionReason.DISPUTE,
        suspended_at.get_db_prep_value(now, connection),
        order_id,
        *open_statuses,
        order_id,
        LicenseStatus.ACTIVE,
        LicenseStatus.PENDING,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def suspend_for_dispute_orm(order_id: int, now: datetime) -> int:
    first_open = Dispute.objects.filter(order_id=order_id, status__in=_open_statuses())
    first_open = first_open.order_by("created_at", "id").values("stripe_dispute_id")[:1]
    return License.objects.filter(
        order_id=order_id, status__in=[LicenseStatus.ACTIVE, LicenseStatus.PENDING]
    ).update(
        status=LicenseStatus.SUSPENDED,
        reason=SuspensionReason.DISPUTE,
        suspended_at=now,
        dispute_id=Coalesce(Subquery(first_open), Value("")),
    )


def revoke_licenses(order_id: int, *, reason: str, now: datetime, dispute_id: str | None) -> int:
    """Revoke the order's licenses not revoked yet, naming the dispute when one is given (a
    chargeback); how many: `License.objects.filter(order_id=...).exclude(status=REVOKED)
    .update(status=REVOKED, reason=..., revoked_at=..., [dispute_id=...])`."""
    revoked_at = License._meta.get_field("revoked_at")
    chargeback = dispute_id is not None
    sql = (
        f"UPDATE {connection.ops.quote_name(_license)}"
        f" SET status = %s, reason = %s, revoked_at = %s{', dispute_id = %s' if chargeback else ''}"
        " WHERE order_id = %s AND status <> %s"
    )
    params = [
        LicenseStatus.REVOKED,
        reason,
        revoked_at.get_db_prep_value(now, connection),
        *([dispute_id] if chargeback else []),
        order_id,
        LicenseStatus.REVOKED,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def revoke_licenses_orm(
    order_id: int, *, reason: str, now: datetime, dispute_id: str | None
) -> int:
    named = {"dispute_id": dispute_id} if dispute_id is not None else {}
    return (
        License.objects.filter(order_id=order_id)
        .exclude(status=LicenseStatus.REVOKED)
        .update(status=LicenseStatus.REVOKED, reason=reason, revoked_at=now, **named)
    )
