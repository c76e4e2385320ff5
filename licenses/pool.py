"""Pool keys: importing a vendor's keys, claiming them for licenses, filling licenses that wait."""

import csv
import io
from collections.abc import Iterable

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from .keys import hash_key, normalise
from .models import License, LicenseStatus, PoolKey
from .signals import stock_low


def _in_stock(product):
    return PoolKey.objects.filter(product=product, claimed_at=None)


def claim_pool_key(license: License) -> bool:
    """Give `license` the oldest unclaimed key of its product, in the caller's transaction.

    On PostgreSQL, SKIP LOCKED lets concurrent orders take different keys without waiting on
    each other; on SQLite, IMMEDIATE transactions already run one at a time. Either way the
    one-to-one column makes a second claim of a key impossible.
    """
    keys = _in_stock(license.product).order_by("id")
    if connection.features.has_select_for_update_skip_locked:
        keys = keys.select_for_update(skip_locked=True)
    key = keys.first()
    if key is None:
        return False
    key.claimed_at = timezone.now()
    key.save(update_fields=["claimed_at"])
    license.pool_key, license.key, license.key_hash = key, key.key, key.key_hash
    return True


def alert_if_low(product, *, claimed: int, waiting: bool) -> None:
    """Send `stock_low` when stock just fell under the threshold, or when it is empty and a
    license had to wait. `claimed` keys were taken by the current transaction."""
    if claimed == 0 and not waiting:
        return
    remaining = _in_stock(product).count()
    threshold = product.stock_alert_threshold
    crossed = remaining < threshold <= remaining + claimed
    if crossed or (waiting and remaining == 0):
        stock_low.send(sender=PoolKey, product=product, remaining=remaining, threshold=threshold)


def parse_keys(data: bytes | str) -> list[str]:
    """Keys from a text file (one per line) or a CSV file (first column; a `key` header is skipped)."""
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    keys = []
    for row in csv.reader(io.StringIO(text)):
        value = row[0].strip() if row else ""
        if value and value.lower() not in ("key", "keys", "license", "license_key"):
            keys.append(value)
    return keys


@transaction.atomic
def import_keys(product, keys: Iterable[str]) -> tuple[int, int]:
    """Add keys to the product's pool, skipping duplicates (in the file or already known).
    Returns (imported, skipped). Licenses waiting for a key get one, oldest first."""
    imported = skipped = 0
    seen: set[str] = set()
    for raw in keys:
        digest = hash_key(raw)
        if not normalise(raw) or digest in seen:
            skipped += 1
            continue
        seen.add(digest)
        try:
            with transaction.atomic():
                PoolKey.objects.create(product=product, key=raw.strip(), key_hash=digest)
        except IntegrityError:
            skipped += 1
        else:
            imported += 1
    fill_waiting(product)
    return imported, skipped


def fill_waiting(product) -> int:
    """Give keys to pending licenses of the product, oldest first. Returns how many were filled."""
    from .emails import queue_key_email

    waiting = License.objects.filter(product=product, status=LicenseStatus.PENDING)
    filled_orders: set[int] = set()
    filled = 0
    for license in waiting.order_by("created_at", "id").select_for_update():
        if not claim_pool_key(license):
            break
        now = timezone.now()
        license.status, license.activated_at = LicenseStatus.ACTIVE, now
        if license.expires_at is not None:  # the days it waited for its key are not used up
            license.expires_at += now - license.created_at
        fields = ["pool_key", "key", "key_hash", "status", "activated_at", "expires_at"]
        license.save(update_fields=fields)
        filled_orders.add(license.order_id)
        filled += 1
    for order_id in sorted(filled_orders):
        queue_key_email(order_id)
    alert_if_low(product, claimed=filled, waiting=False)
    return filled
