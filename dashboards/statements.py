"""The dashboards' written-out SQL, each statement beside the ORM query it replaces.

Each `name` has its twin `name_orm`, the queries as the ORM writes them: tests/test_statements.py
runs both on the same rows, on SQLite and PostgreSQL, and compares their answers.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections, transaction
from django.db.models import QuerySet


def bounded_counts(querysets: dict[str, QuerySet], limit: int) -> dict[str, int]:
    """How many rows each queryset holds, counted up to `limit` (one short index scan each,
    however many rows there are), all in one statement: `{name: queryset[:limit].count()}`,
    one query per queryset. /mgmt's order tabs count with it on every page."""
    parts, params, database = [], [], None
    for queryset in querysets.values():
        sql, query_params = queryset.order_by().values("pk")[:limit].query.sql_with_params()
        parts.append(f"(SELECT COUNT(*) FROM ({sql}) AS tab)")
        params += query_params
        database = queryset.db
    with connections[database or "default"].cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), params)
        return dict(zip(querysets, cursor.fetchone(), strict=True))


def bounded_counts_orm(querysets: dict[str, QuerySet], limit: int) -> dict[str, int]:
    return {name: queryset.order_by()[:limit].count() for name, queryset in querysets.items()}


@contextmanager
def planned_for_each_value(needed: bool = True, using: str = "default") -> Iterator[None]:
    """The statements inside are planned for the values they are given. PostgreSQL may run a
    prepared statement (settings: server-side binding, prepared after 5 runs) with a generic
    plan, made without the values: for a search's `LIKE '%…%'` that plan cannot know that the
    trigram indexes find a handful of rows, and reads every order (seconds at 200,000 orders,
    docs/benchmarks.md). `SET LOCAL` holds for this transaction only. Other databases: nothing."""
    connection = connections[using]
    if not needed or connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(using=using):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        yield
