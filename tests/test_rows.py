"""shop.rows: the written-out statements the webhook uses must read and write exactly what the
ORM would, on SQLite and on PostgreSQL. Each helper is compared with the ORM call it stands for."""

import math
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.models import signals
from django.forms.models import model_to_dict

from licenses.keys import generate_key, hash_key
from licenses.models import Activation, KeyEmail, License, LicenseStatus
from notifications.models import Delivery, Notification
from orders.models import (
    Dispute,
    Order,
    OrderTransition,
    PaymentMismatch,
    Refund,
    StripeEvent,
)
from shop import rows

from .factories import make_order, make_product

pytestmark = pytest.mark.django_db


def test_insert_all_sets_each_primary_key_to_its_own_row_across_batches(
    django_assert_num_queries,
):
    order = make_order(quantity=1)
    product = order.line_items()[0].product
    licenses = []
    for _ in range(150):
        key = generate_key(product.license_prefix)
        licenses.append(
            License(
                order=order,
                product=product,
                status=LicenseStatus.ACTIVE,
                activated_at=datetime.now(UTC),
                key=key,
                key_hash=hash_key(key),
            )
        )
    fields = [f for f in License._meta.concrete_fields if not f.primary_key]
    batches = math.ceil(150 / connection.ops.bulk_batch_size(fields, licenses))

    with django_assert_num_queries(batches):
        rows.insert_all(licenses)

    assert len({license.pk for license in licenses}) == 150
    for license in licenses:
        stored = License.objects.get(pk=license.pk)
        assert (stored.key, stored.status, stored.order_id) == (
            license.key,
            LicenseStatus.ACTIVE,
            order.pk,
        )
        assert stored.created_at == license.created_at  # auto_now_add set on the instance too
        assert not license._state.adding


def test_insert_all_of_nothing_runs_no_statement(django_assert_num_queries):
    with django_assert_num_queries(0):
        rows.insert_all([])


def test_select_converts_values_as_the_orm_does():
    order = make_order(product=make_product(name="Ünïcode"), quantity=2)
    Order.objects.filter(pk=order.pk).update(
        async_payment_pending=True, paid_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    )
    StripeEvent.objects.create(
        id="evt_rows",
        type="charge.refunded",
        created=1,
        payload={"a": [1, {"b": None}]},
        outcome=StripeEvent.Outcome.UNKNOWN_ORDER,
    )

    (read,) = rows.select(Order, "WHERE id = %s", [order.pk])
    (event,) = rows.select(StripeEvent, "WHERE id = %s", ["evt_rows"])

    assert model_to_dict(read) == model_to_dict(Order.objects.get(pk=order.pk))
    assert read.async_payment_pending is True  # SQLite stores 1
    assert read.paid_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert event.payload == {"a": [1, {"b": None}]}
    assert not read._state.adding
    assert rows.select(Order, "WHERE id = %s", [-1]) == []


def test_update_matches_only_the_rows_named():
    first, second = make_order(), make_order()

    assert rows.update(Order, {"status": "failed"}, pk=first.pk, status="pending") == 1
    assert rows.update(Order, {"status": "completed"}, pk=first.pk, status="pending") == 0

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("failed", "pending")


def test_update_then_insert_writes_the_new_row_only_when_the_update_matched(
    django_assert_num_queries,
):
    order = make_order()
    statements = 1 if connection.vendor == "postgresql" else 2

    def audit(from_status: str) -> OrderTransition:
        return OrderTransition(order=order, from_status=from_status, to_status="failed")

    with django_assert_num_queries(statements):
        moved = audit("pending")
        assert rows.update_then_insert(
            Order, {"status": "failed"}, {"pk": order.pk, "status": "pending"}, moved
        )
    with django_assert_num_queries(1):  # nothing matched: nothing inserted, on both databases
        refused = audit("pending")
        assert not rows.update_then_insert(
            Order, {"status": "completed"}, {"pk": order.pk, "status": "pending"}, refused
        )

    assert refused.pk is None and not moved._state.adding
    assert list(OrderTransition.objects.filter(order=order, to_status="failed")) == [moved]
    assert not OrderTransition.objects.filter(order=order, to_status="completed").exists()
    order.refresh_from_db()
    assert order.status == "failed"


def stored(row) -> dict:
    """A row as the database holds it, without what differs between two inserts of the same
    values (the primary key, and the times auto_now_add takes)."""
    row = type(row).objects.get(pk=row.pk)
    times = {"created_at", "updated_at", "received_at"}
    return {k: v for k, v in model_to_dict(row).items() if k not in times and k != "id"}


def test_insert_writes_what_save_writes_and_sets_the_primary_key(django_assert_num_queries):
    order = make_order()

    def audit() -> OrderTransition:
        return OrderTransition(order=order, from_status="pending", to_status="failed", source="t")

    with django_assert_num_queries(1):
        written = rows.insert(audit())
    saved = audit()
    saved.save()

    assert written.pk is not None and not written._state.adding
    assert written.created_at is not None  # auto_now_add, set as save() sets it
    assert stored(written) == stored(saved)


def test_insert_unless_taken_inserts_once_as_the_orm_would_with_its_unique_field():
    order = make_order()

    def refund(amount: int) -> Refund:
        return Refund(
            order=order, stripe_refund_id="re_once", amount_cents=amount, currency="usd",
            status="succeeded",
        )  # fmt: skip

    first, again = refund(500), refund(900)
    assert rows.insert_unless_taken(first, "stripe_refund_id")
    assert not rows.insert_unless_taken(again, "stripe_refund_id")

    assert again.pk is None and again._state.adding  # nothing inserted, nothing pretended
    assert list(Refund.objects.filter(stripe_refund_id="re_once")) == [first]
    orm, created = Refund.objects.get_or_create(
        stripe_refund_id="re_orm",
        defaults={"order": order, "amount_cents": 500, "currency": "usd", "status": "succeeded"},
    )
    assert created and {**stored(first), "stripe_refund_id": "re_orm"} == stored(orm)


def test_insert_sql_is_the_insert_the_orm_would_run():
    order = make_order()

    def audit() -> OrderTransition:
        return OrderTransition(order=order, to_status="pending", source="t", reason="again")

    sql, values = rows.insert_sql(audit())
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
    saved = audit()
    saved.save()

    written, orm = OrderTransition.objects.filter(order=order, source="t").order_by("id")
    assert orm == saved and stored(written) == stored(saved)
    assert abs(written.created_at - saved.created_at).total_seconds() < 60


def test_fetch_reads_the_rows_values_list_reads():
    first, second = make_order(), make_order()
    table = connection.ops.quote_name(Order._meta.db_table)
    sql = f"SELECT id, number, subtotal_cents FROM {table} WHERE id IN (%s, %s) ORDER BY id"

    found = rows.fetch(sql, [first.pk, second.pk])

    twin = Order.objects.filter(pk__in=[first.pk, second.pk]).order_by("id")
    assert [tuple(row) for row in found] == list(twin.values_list("id", "number", "subtotal_cents"))


# The models some rows are written to by hand (shop.rows, the apps' statements.py), as
# bulk_create() and update() write them: without save(), so without its signals.
WRITTEN_BY_HAND = [
    Order, OrderTransition, StripeEvent, PaymentMismatch, Refund, Dispute,
    License, Activation, KeyEmail, Notification, Delivery,
]  # fmt: skip
SKIPPED = [signals.pre_save, signals.post_save]


@pytest.mark.parametrize("model", WRITTEN_BY_HAND, ids=lambda model: model.__name__)
def test_nothing_listens_to_the_save_signals_of_the_models_written_by_hand(model):
    """A receiver of these would run for the rows the ORM saves and silently never for the ones
    written out: whatever it should do belongs where the rows are written."""
    for signal in SKIPPED:
        assert not signal.has_listeners(model), f"{model.__name__} has a {signal} receiver"
