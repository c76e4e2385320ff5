"""shop.rows: the written-out statements the webhook uses must read and write exactly what the
ORM would, on SQLite and on PostgreSQL."""

import math
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.forms.models import model_to_dict

from licenses.keys import generate_key, hash_key
from licenses.models import License, LicenseStatus
from orders.models import Order, OrderTransition, StripeEvent
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
