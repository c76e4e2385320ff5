"""Writing rows without the ORM's round trips, where the webhook writes them on every event."""

from collections.abc import Sequence
from typing import Any

from django.db import connection, models


def insert_sql(instance: models.Model) -> tuple[str, list[Any]]:
    """An INSERT of `instance` (without its primary key if it has none yet) and its values,
    prepared by the fields as the ORM prepares them (auto_now_add included)."""
    meta = instance._meta
    fields = [f for f in meta.concrete_fields if not (f.primary_key and instance.pk is None)]
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"
        f" VALUES ({', '.join(['%s'] * len(fields))})"
    )
    return sql, [f.get_db_prep_save(f.pre_save(instance, add=True), connection) for f in fields]


def insert_unless_taken(instance: models.Model, unique: str) -> bool:
    """INSERT `instance` unless a row already holds its value of the unique field `unique`; True
    if it was inserted (its primary key is then set). One statement, no savepoint: a concurrent
    insert of the same value waits for the first to commit, then inserts nothing."""
    sql, values = insert_sql(instance)
    pk, quote = instance._meta.pk, connection.ops.quote_name
    conflict = quote(instance._meta.get_field(unique).column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"{sql} ON CONFLICT ({conflict}) DO NOTHING RETURNING {quote(pk.column)}", values
        )
        inserted = cursor.fetchone()
    if inserted is None:
        return False
    instance.pk = pk.to_python(inserted[0])
    instance._state.adding, instance._state.db = False, connection.alias
    return True


def insert(instance: models.Model) -> models.Model:
    """INSERT `instance` in one statement and set its primary key: what `save()` does for a new
    row, without its signals and checks (nothing listens to these models' signals)."""
    sql, values = insert_sql(instance)
    pk = instance._meta.pk
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} RETURNING {connection.ops.quote_name(pk.column)}", values)
        instance.pk = pk.to_python(cursor.fetchone()[0])
    instance._state.adding, instance._state.db = False, connection.alias
    return instance


def update(model: type[models.Model], values: dict[str, Any], **where: Any) -> int:
    """UPDATE the rows of `model` whose fields equal `where` with `values` (field names, or a
    foreign key's attname with its id; no auto_now applied), in one written-out statement;
    returns how many rows matched."""
    meta, quote = model._meta, connection.ops.quote_name
    sets = [meta.get_field(name) for name in values]
    matches = [meta.pk if name == "pk" else meta.get_field(name) for name in where]
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {', '.join(f'{quote(f.column)} = %s' for f in sets)}"
        f" WHERE {' AND '.join(f'{quote(f.column)} = %s' for f in matches)}"
    )
    params = [f.get_db_prep_save(v, connection) for f, v in zip(sets, values.values(), strict=True)]
    params += [
        f.get_db_prep_value(v, connection) for f, v in zip(matches, where.values(), strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def instance(model: type[models.Model], values: Sequence[Any]) -> models.Model:
    """A `model` instance from the values of its concrete fields, in their order, as read from
    the database: converted as the ORM converts them (SQLite's 0/1 booleans, say)."""
    fields = model._meta.concrete_fields
    column = [f.get_col(model._meta.db_table) for f in fields]
    converted = []
    for field, col, value in zip(fields, column, values, strict=True):
        for convert in connection.ops.get_db_converters(col) + field.get_db_converters(connection):
            value = convert(value, col, connection)
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)
