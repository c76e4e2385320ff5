"""The notifications app's written-out SQL: the outbox's insert, which every change that tells
Discord runs (most of them inside the webhook's transaction).

It replaces `Notification.objects.create(...)`, a read of the destinations, and
`Delivery.objects.bulk_create(...)` for the ones it picks: four steps, where on PostgreSQL this
is one statement (on SQLite two). Which destinations get a message is written here only; there
is no ORM copy of the rule to drift from it, and tests/test_statements.py checks it against the
rule as DESIGN states it, on SQLite and PostgreSQL.
"""

import functools
from typing import Any

from django.db import connection

from shop.rows import insert_sql

from .models import Delivery, Destination, Notification

# A destination that lists the event; `dest.events` is a JSON list of event names.
SUBSCRIBED = {
    "postgresql": "dest.events @> jsonb_build_array(%s::text)",
    "sqlite": "EXISTS (SELECT 1 FROM json_each(dest.events) WHERE json_each.value = %s)",
}


def insert_notification(
    notification: Notification, *, only: list[int] | None = None
) -> Notification:
    """INSERT `notification`, and one Delivery (its defaults) for each destination that gets it:
    a destination that is switched on or that Discord refused (a deleted webhook, a wrong token:
    it keeps its messages, to send once fixed), never one staff switched off; among them, the
    ones subscribed to its event, or those in `only` (a test message, whatever they subscribed
    to). Sets its primary key."""
    insert, values = insert_sql(notification)
    chosen = [notification.event] if only is None else list(only)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            deliveries, defaults = _deliveries_sql("n.id", "n, ", only)
            sql = f"WITH n AS ({insert} RETURNING id), d AS ({deliveries}) SELECT id FROM n"
            cursor.execute(sql, [*values, *defaults, *chosen])
            notification.pk = cursor.fetchone()[0]
        else:
            cursor.execute(insert, values)
            notification.pk = cursor.lastrowid
            deliveries, defaults = _deliveries_sql("%s", "", only)
            cursor.execute(deliveries, [notification.pk, *defaults, *chosen])
    notification._state.adding = False
    return notification


def _deliveries_sql(
    notification_id: str, source: str, only: list[int] | None
) -> tuple[str, list[Any]]:
    """INSERT … SELECT of one new Delivery (its defaults) per destination chosen; the event's
    name, or the ids in `only`, are the last parameters."""
    sql, fields = _deliveries_shape(
        notification_id, source, connection.vendor, None if only is None else len(only)
    )
    template = Delivery()
    return sql, [f.get_db_prep_save(f.pre_save(template, add=True), connection) for f in fields]


@functools.cache
def _deliveries_shape(notification_id: str, source: str, vendor: str, only: int | None):
    fields = [f for f in Delivery._meta.concrete_fields if not (f.primary_key or f.is_relation)]
    quote = connection.ops.quote_name
    columns = ["notification_id", "destination_id", *(quote(f.column) for f in fields)]
    if only is None:
        chosen = SUBSCRIBED[vendor]
    else:
        chosen = f"dest.id IN ({', '.join(['%s'] * only)})" if only else "1 = 0"
    sql = (
        f"INSERT INTO {quote(Delivery._meta.db_table)} ({', '.join(columns)})"
        f" SELECT {notification_id}, dest.id{', %s' * len(fields)}"
        f" FROM {source}{quote(Destination._meta.db_table)} dest"
        f" WHERE (dest.enabled OR dest.disabled_reason <> '') AND {chosen}"
    )
    return sql, fields
