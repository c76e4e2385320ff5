"""/mgmt/orders/export.csv: the list's filter, every row, streamed in keyset chunks, so 200,000
orders take no more memory than 2,000.

Written for a spreadsheet: amounts in the currency's units ("49.00", with a currency column),
times as "2026-12-07 14:05:00" in the staff member's zone (named in the `time_zone` column),
order numbers led by "#" so that none is read as a number ("00012345", "1E5"), and any cell
a spreadsheet would run as a formula quoted as text. The design's first ten columns keep
their names and order; `total_cents` stays in minor units for the systems that read it."""

import csv
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.db.models import Sum
from django.utils.text import slugify

from licenses.models import License
from orders import amounts
from orders.models import Order, Refund
from shop.money import exponent, to_decimal

from .listing import items_in_words
from .search import METHODS, Criteria, chunks, filtered

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
    "name",
    "products",
    "total",
    "refunded",
    "net",
    "payment_method",
    "paid_at",
    "time_zone",
]
# Recorded by the checkout when the Order model has them (orders.receipt reads them alike).
OPTIONAL = [name for name in ("discount_cents", "tax_cents") if hasattr(Order, name)]
FIELDS = ["number", "public_id", "status", "email", "customer_name", "currency",
          "subtotal_cents", "amount_total_cents", "paid_at", "payment_method",
          "refunds_succeeded_cents", "chargebacks_cents", "dispute_fees_cents",
          "charge_amount_refunded_cents", "created_at", "stripe_session_id",
          "stripe_payment_intent_id", *OPTIONAL]  # fmt: skip


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


def _refunds(order_ids: list[int]) -> dict[int, dict[str, int]]:
    """Each order's refund totals by status, for its ledger (one query for the chunk)."""
    found: dict[int, dict[str, int]] = defaultdict(dict)
    rows = Refund.objects.filter(order_id__in=order_ids).values_list("order_id", "status")
    for order_id, status, total in rows.annotate(total=Sum("amount_cents")).order_by():
        found[order_id][status] = total
    return found


def amount(minor: int, currency: str) -> str:
    """49.00, ¥1999 as 1999, -5.00: a plain number a spreadsheet reads in any locale."""
    return f"{to_decimal(minor, currency):.{exponent(currency)}f}"


def _time(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def columns() -> list[str]:
    return COLUMNS + [name.removesuffix("_cents") for name in OPTIONAL]


def csv_lines(criteria: Criteria, *, zone: ZoneInfo) -> Iterator[str]:
    """The rows, in `zone` (passed in: the response streams after the view, and its active
    zone, has returned)."""
    writer = csv.writer(_Line())
    yield writer.writerow(columns())
    for chunk in chunks(filtered(criteria).only(*FIELDS), searching=criteria.searching):
        ids = [order.pk for order in chunk]
        licenses, refunds, items = _licenses(ids), _refunds(ids), items_in_words(ids)
        for order in chunk:
            yield writer.writerow(_row(order, zone, licenses, refunds.get(order.pk, {}), items))


def _row(order: Order, zone: ZoneInfo, licenses: dict, by_status: dict, items: dict) -> list:
    ledger = amounts.ledger(order, by_status=by_status)
    money = order.currency
    return [
        "#" + order.number, order.public_id, order.status, _safe(order.email),
        order.total_cents, order.currency.upper(), _time(order.created_at, zone),
        order.stripe_session_id, order.stripe_payment_intent_id, licenses.get(order.pk, ""),
        _safe(order.customer_name), _safe(items.get(order.pk, "")),
        amount(order.total_cents, money), amount(ledger.refunded, money),
        amount(ledger.net, money) if order.is_paid else "", _safe(order.payment_method),
        _time(order.paid_at, zone), zone.key,
        *[amount(getattr(order, name) or 0, money) for name in OPTIONAL],
    ]  # fmt: skip


def _safe(text: str) -> str:
    """A cell a spreadsheet would run as a formula (=, +, -, @ first) is quoted as text."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def file_name(criteria: Criteria, today: date) -> str:
    """orders-completed-usd-card-2026-12-01-to-2026-12-07-2026-12-07.csv: the filter, then the
    day it was made."""
    parts = [criteria.status, criteria.failure and f"{criteria.failure}", criteria.product,
             criteria.currency, METHODS[criteria.method][0] if criteria.method else "",
             criteria.q and f"search {criteria.q}",
             criteria.since and f"from {criteria.since}", criteria.until and f"to {criteria.until}"]  # fmt: skip
    words = [slugify(str(part))[:40] for part in parts if part]
    return "-".join(["orders", *filter(None, words), today.isoformat()]) + ".csv"
