"""Writing rows without the ORM's round trips, where the webhook writes them on every event."""

import functools
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, models

# The shape of each statement depends only on the model (PostgreSQL and SQLite quote names
# alike), so it is built once per process; the values are prepared on every call, as the ORM
# prepares them.


@functools.cache
def _insert_shape(model: type[models.Model], with_pk: bool):
    """("INSERT INTO table (columns)", "(%s, …)" for one row, the fields in column order)."""
    meta, quote = model._meta, connection.ops.quote_name
    fields = [f for f in meta.concrete_fields if with_pk or not f.primary_key]
    head = f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"
    return head, f"({', '.join(['%s'] * len(fields))})", fields


def _prepared(instance: models.Model, fields: Sequence[models.Field]) -> list[Any]:
    db = connections[DEFAULT_DB_ALIAS]  # not the `connection` proxy, which every field asks
    return [f.get_db_prep_save(f.pre_save(instance, add=True), db) for f in fields]


def insert_sql(instance: models.Model) -> tuple[str, list[Any]]:
    """An INSERT of `instance` (without its primary key if it has none yet) and its values,
    prepared by the fields as the ORM prepares them (auto_now_add included)."""
    head, row, fields = _insert_shape(type(instance), instance.pk is not None)
    return f"{head} VALUES {row}", _prepared(instance, fields)


def _saved(instance: models.Model, pk: Any) -> None:
    instance.pk = instance._meta.pk.to_python(pk)
    instance._state.adding, instance._state.db = False, connection.alias


def insert_unless_taken(instance: models.Model, unique: str) -> bool:
    """INSERT `instance` unless a row already holds its value of the unique field `unique`; True
    if it was inserted (its primary key is then set). One statement, no savepoint: a concurrent
    insert of the same value waits for the first to commit, then inserts nothing."""
    sql, values = insert_sql(instance)
    conflict = connection.ops.quote_name(instance._meta.get_field(unique).column)
    pk = _pk_column(type(instance))
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} ON CONFLICT ({conflict}) DO NOTHING RETURNING {pk}", values)
        inserted = cursor.fetchone()
    if inserted is None:
        return False
    _saved(instance, inserted[0])
    return True


def insert(instance: models.Model) -> models.Model:
    """INSERT `instance` in one statement and set its primary key: what `save()` does for a new
    row, without its signals and checks (nothing listens to these models' signals)."""
    sql, values = insert_sql(instance)
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} RETURNING {_pk_column(type(instance))}", values)
        _saved(instance, cursor.fetchone()[0])
    return instance


def insert_all(instances: Sequence[models.Model]) -> None:
    """INSERT new `instances` of one model and set their primary keys: `bulk_create()` without
    its checks, in one statement per batch the backend's parameter limit allows (one, for an
    order's licenses)."""
    if not instances:
        return
    model = type(instances[0])
    if not connection.features.can_return_rows_from_bulk_insert:  # SQLite before 3.35
        model.objects.bulk_create(instances)
        return
    head, row, fields = _insert_shape(model, False)
    size = max(connection.ops.bulk_batch_size(fields, instances), 1)
    with connection.cursor() as cursor:
        for start in range(0, len(instances), size):
            batch = instances[start : start + size]
            values = [value for instance in batch for value in _prepared(instance, fields)]
            rows = ", ".join([row] * len(batch))
            cursor.execute(f"{head} VALUES {rows} RETURNING {_pk_column(model)}", values)
            for instance, (pk,) in zip(batch, cursor.fetchall(), strict=True):
                _saved(instance, pk)


@functools.cache
def _pk_column(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.pk.column)


@functools.cache
def _update_shape(model: type[models.Model], names: tuple[str, ...], where: tuple[str, ...]):
    meta, quote = model._meta, connection.ops.quote_name
    sets = [meta.get_field(name) for name in names]
    matches = [meta.pk if name == "pk" else meta.get_field(name) for name in where]
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {', '.join(f'{quote(f.column)} = %s' for f in sets)}"
        f" WHERE {' AND '.join(f'{quote(f.column)} = %s' for f in matches)}"
    )
    return sql, sets, matches


def update_sql(model: type[models.Model], values: dict[str, Any], **where: Any):
    """The UPDATE `update()` runs, and its parameters."""
    sql, sets, matches = _update_shape(model, tuple(values), tuple(where))
    db = connections[DEFAULT_DB_ALIAS]
    params = [f.get_db_prep_save(v, db) for f, v in zip(sets, values.values(), strict=True)]
    params += [f.get_db_prep_value(v, db) for f, v in zip(matches, where.values(), strict=True)]
    return sql, params


def update(model: type[models.Model], values: dict[str, Any], **where: Any) -> int:
    """UPDATE the rows of `model` whose fields equal `where` with `values` (field names, or a
    foreign key's attname with its id; no auto_now applied), in one written-out statement;
    returns how many rows matched."""
    sql, params = update_sql(model, values, **where)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def update_then_insert(
    model: type[models.Model], values: dict[str, Any], where: dict[str, Any], new: models.Model
) -> bool:
    """`update(model, values, **where)` of one row and, only if it matched, `insert(new)`: on
    PostgreSQL in one statement (a data-modifying WITH), elsewhere in two. True if it matched
    (`new` is then saved)."""
    if connection.vendor != "postgresql":
        if update(model, values, **where) != 1:
            return False
        insert(new)
        return True
    changed, params = update_sql(model, values, **where)
    head, row, fields = _insert_shape(type(new), new.pk is not None)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH matched AS ({changed} RETURNING 1)"
            f" {head} SELECT {row[1:-1]} FROM matched RETURNING {_pk_column(type(new))}",
            [*params, *_prepared(new, fields)],
        )
        inserted = cursor.fetchone()
    if inserted is None:
        return False
    _saved(new, inserted[0])
    return True


def fetch(sql: str, params: Sequence[Any]) -> list[tuple]:
    """The rows a written-out SELECT finds, as tuples."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@functools.cache
def columns(model: type[models.Model], prefix: str = "") -> str:
    """The model's concrete columns, in field order, quoted (each after `prefix`, a table alias
    and a dot): the select list `instance()` reads."""
    quote = connection.ops.quote_name
    return ", ".join(f"{prefix}{quote(f.column)}" for f in model._meta.concrete_fields)


def select(model: type[models.Model], rest: str, params: Sequence[Any]) -> list[models.Model]:
    """`model` instances from `SELECT <its columns> FROM <its table> <rest>`: what
    `Model.objects.raw()` gives, without resolving the columns against the fields on every call
    (which cost more CPU than the look-ups the webhook makes with it)."""
    sql = f"SELECT {columns(model)} FROM {connection.ops.quote_name(model._meta.db_table)} {rest}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [instance(model, row) for row in cursor.fetchall()]


Converters = list[tuple[Any, list[Callable]]]
_converters_by_connection: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def _converters(model: type[models.Model], database: Any) -> Converters:
    """Each concrete field's column and the functions that turn its database value into the
    field's (the backend's and the field's own), looked up once per connection and model."""
    per_model = _converters_by_connection.setdefault(database, {})
    if model not in per_model:
        table = model._meta.db_table
        per_model[model] = [
            (col, database.ops.get_db_converters(col) + field.get_db_converters(database))
            for field in model._meta.concrete_fields
            for col in [field.get_col(table)]
        ]
    return per_model[model]


@functools.cache
def _attnames(model: type[models.Model]) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields]


def instance(model: type[models.Model], values: Sequence[Any]) -> models.Model:
    """A `model` instance from the values of its concrete fields, in their order, as read from
    the database: converted as the ORM converts them (SQLite's 0/1 booleans, say)."""
    database = connections[DEFAULT_DB_ALIAS]
    converted = []
    for (col, convert_all), value in zip(_converters(model, database), values, strict=True):
        for convert in convert_all:
            value = convert(value, col, database)
        converted.append(value)
    return model.from_db(database.alias, _attnames(model), converted)
