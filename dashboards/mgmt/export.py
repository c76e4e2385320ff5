"""/mgmt/orders/export.csv: the list's filter, every row, streamed in keyset chunks, so 200,000
orders take no more memory than 2,000."""

import csv
from collections import defaultdict
from collections.abc import Iterator

from licenses.models import License
from orders.amounts import TOTAL

from .search import Criteria, chunks, filtered

COLUMNS = [
    "number",
    "public_id",
    "status",
    "email",
    "total_cents",
    "currency",
    "created_at",
    "stripe_session_id",
    "stripe_payment_intent_id",
    "licenses",
]


class _Line:
    """csv.writer's file: hands back each line instead of keeping it."""

    def write(self, text: str) -> str:
        return text


def _licenses(order_ids: list[int]) -> dict[int, str]:
    """Each order's licenses as "active;suspended" (never a key)."""
    found = defaultdict(list)
    rows = License.objects.filter(order_id__in=order_ids).order_by("order_id", "id")
    for order_id, status in rows.values_list("order_id", "status"):
        found[order_id].append(status)
    return {order_id: ";".join(statuses) for order_id, statuses in found.items()}


def csv_lines(criteria: Criteria) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(COLUMNS)
    rows = filtered(criteria).values_list(
        "pk", "number", "public_id", "status", "email", TOTAL, "currency", "created_at",
        "stripe_session_id",
        "stripe_payment_intent_id",
    )  # fmt: skip
    for chunk in chunks(rows):
        licenses = _licenses([row[0] for row in chunk])
        for pk, number, public_id, status, email, total, currency, created, *ids in chunk:
            yield writer.writerow(
                [number, public_id, status, _safe(email), total, currency, created.isoformat(),
                 *ids, licenses.get(pk, "")]
            )  # fmt: skip


def _safe(text: str) -> str:
    """A cell a spreadsheet would run as a formula (=, +, -, @ first) is quoted as text."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
