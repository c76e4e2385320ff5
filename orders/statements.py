"""The orders app's written-out SQL, each statement beside the ORM query it replaces.

The webhook runs these on every event, and building the ORM's query cost more CPU than running
it (docs/benchmarks.md, "What was cut"). Each `name` has its twin `name_orm`, the query as the
ORM writes it: tests/test_statements.py runs both on the same rows, on SQLite and PostgreSQL, and
compares what they read or write. Change one, change the other.

Inserts and updates that the generic helpers of shop/rows.py write from the model alone stay
with their callers; tests/test_rows.py compares those helpers with the ORM.
"""

from typing import Any

from django.db import connection
from django.db.models import Q, Sum

from shop import rows

from .models import Dispute, Order, OrderItem, Product, Refund, StripeEvent


def items_with_products(order: Order) -> list[OrderItem]:
    """`OrderItem.objects.filter(order=order).select_related("product").order_by("id")`: every
    paid order's licenses and embeds read them (Order.line_items)."""
    quote = connection.ops.quote_name
    sql = (
        f"SELECT {rows.columns(OrderItem, 'i.')}, {rows.columns(Product, 'p.')}"
        f" FROM {quote(OrderItem._meta.db_table)} i"
        f" JOIN {quote(Product._meta.db_table)} p ON p.{quote('id')} = i.{quote('product_id')}"
        f" WHERE i.{quote('order_id')} = %s ORDER BY i.{quote('id')}"
    )
    items = []
    split = len(OrderItem._meta.concrete_fields)
    for row in rows.fetch(sql, [order.pk]):
        item = rows.instance(OrderItem, row[:split])
        item._state.fields_cache["product"] = rows.instance(Product, row[split:])
        items.append(item)
    return items


def items_with_products_orm(order: Order) -> list[OrderItem]:
    return list(OrderItem.objects.filter(order=order).select_related("product").order_by("id"))


def locked_order(field: str, value: Any) -> Order | None:
    """The newest order whose `field` is `value`, its row locked:
    `Order.objects.select_for_update(no_key=True).filter(...).order_by("-created_at").first()`,
    which every event runs to find its order."""
    column = Order._meta.get_field(field)
    # NO KEY UPDATE: rows that merely point at the order (a queued key email, a license) can
    # still be written meanwhile, so a key import and a webhook never deadlock. SQLite has no
    # row locks: its transactions take the whole database.
    lock = " FOR NO KEY UPDATE" if connection.features.has_select_for_no_key_update else ""
    quote = connection.ops.quote_name
    found = rows.select(
        Order,
        f"WHERE {quote(column.column)} = %s ORDER BY {quote('created_at')} DESC LIMIT 1{lock}",
        [column.get_db_prep_value(value, connection)],
    )
    return found[0] if found else None


def locked_order_orm(field: str, value: Any) -> Order | None:
    found = Order.objects.select_for_update(no_key=True).filter(**{field: value})
    return found.order_by("-created_at").first()


def waiting_events(refs: list[str]) -> list[StripeEvent]:
    """The stored events no order matched that name any of `refs` (PaymentIntent or charge
    ids), oldest first: `StripeEvent.objects.filter(Q(payment_intent_id__in=refs) |
    Q(charge_id__in=refs), outcome=UNKNOWN_ORDER).order_by("created", "id")`, which every
    payment runs (and which almost always finds nothing)."""
    marks = ", ".join(["%s"] * len(refs))
    where = (
        "WHERE outcome = %s"
        f" AND (payment_intent_id IN ({marks}) OR charge_id IN ({marks})) ORDER BY created, id"
    )
    return rows.select(StripeEvent, where, [StripeEvent.Outcome.UNKNOWN_ORDER, *refs, *refs])


def waiting_events_orm(refs: list[str]) -> list[StripeEvent]:
    found = StripeEvent.objects.filter(
        Q(payment_intent_id__in=refs) | Q(charge_id__in=refs),
        outcome=StripeEvent.Outcome.UNKNOWN_ORDER,
    )
    return list(found.order_by("created", "id"))


def succeeded_refunds_total(order: Order) -> int:
    """What the order's refunds that succeeded once come to:
    `order.refunds.filter(succeeded_once=True).aggregate(Sum("amount_cents"))`, which every
    refund event sums."""
    table = connection.ops.quote_name(Refund._meta.db_table)
    sql = (
        f"SELECT COALESCE(SUM(amount_cents), 0) FROM {table} WHERE order_id = %s AND succeeded_once"
    )
    return rows.fetch(sql, [order.pk])[0][0]


def succeeded_refunds_total_orm(order: Order) -> int:
    total = Refund.objects.filter(order=order, succeeded_once=True).aggregate(
        total=Sum("amount_cents")
    )
    return total["total"] or 0


DISPUTE_SUMMARY = ("status", "reason", "amount_cents", "fee_cents", "fee_currency")


def dispute_statuses(order: Order) -> list[tuple[str, str, int, int, str]]:
    """(status, reason, amount, fee, fee currency) of the order's disputes, oldest first:
    `order.disputes.order_by("created_at", "id").values_list(*DISPUTE_SUMMARY)`, which every
    dispute event reads to summarise them on the order."""
    table = connection.ops.quote_name(Dispute._meta.db_table)
    columns = ", ".join(DISPUTE_SUMMARY)
    sql = f"SELECT {columns} FROM {table} WHERE order_id = %s ORDER BY created_at, id"
    return rows.fetch(sql, [order.pk])


def dispute_statuses_orm(order: Order) -> list[tuple[str, str, int, int, str]]:
    found = Dispute.objects.filter(order=order).order_by("created_at", "id")
    return list(found.values_list(*DISPUTE_SUMMARY))


def lock_references(references: list[str]) -> None:
    """A transaction-scoped advisory lock on each of `references` (PaymentIntent and charge ids),
    in the order given: the ORM has no advisory locks, so this one has no twin (the webhook's
    concurrency tests show what it serialises). PostgreSQL only: SQLite's IMMEDIATE
    transactions already run one at a time."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for ref in references:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [ref])
