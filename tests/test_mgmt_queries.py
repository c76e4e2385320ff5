"""/mgmt's pages and every admin changelist take as many queries for 50 rows as for 5."""

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from licenses.models import PoolKey
from notifications.models import Destination
from testkit.stripe_objects import dispute_obj, refund_obj
from tests.account_support import order_in, tell
from tests.factories import add_item, make_product
from tests.mgmt_support import staff_member

pytestmark = pytest.mark.django_db


def populate(n: int, pool) -> None:
    """n orders with items, licenses, Stripe events, notifications and deliveries; some refunded
    in part, some disputed; n pool keys."""
    for i in range(n):
        order = order_in("completed", email=f"buyer{i}@example.com", quantity=2)
        if i % 3 == 1:
            tell(order, "refund.created", refund_obj(order, f"re_{order.number}", 100))
        if i % 3 == 2:
            tell(order, "charge.dispute.created", dispute_obj(order, f"dp_{order.number}"))
    PoolKey.objects.bulk_create(
        PoolKey(product=pool, key=f"K-{pool.pk}-{n}-{i}", key_hash=f"{n}-{i}") for i in range(n)
    )


def count(client, url: str, **headers) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, url
    return len(captured)


def big_order(client) -> str:
    order = order_in("completed", email="big@example.com", quantity=6)
    for _ in range(4):
        add_item(order, product=make_product(), quantity=3)
    tell(order, "refund.created", refund_obj(order, "re_big", 100))
    tell(order, "refund.created", refund_obj(order, "re_big2", 100))
    return order.number


def test_mgmt_pages_take_the_same_queries_for_5_or_50_rows(client, django_assert_max_num_queries):
    client.force_login(staff_member())
    Destination.objects.create(name="ops", webhook_id="1", token="t")
    pool = make_product(license_kind="pool", name="Game")
    small = order_in("completed", email="small@example.com").number
    populate(5, pool)
    pages = ["/mgmt/", "/mgmt/orders/", "/mgmt/notifications/", "/mgmt/events/",
             "/mgmt/licenses/", f"/mgmt/orders/{small}/"]  # fmt: skip
    few = {url: count(client, url) for url in pages}
    few["live"] = count(client, "/mgmt/orders/", HX_Request="true")
    populate(45, pool)
    many = {url: count(client, url) for url in pages}
    many["live"] = count(client, "/mgmt/orders/", HX_Request="true")
    assert many == few
    assert count(client, f"/mgmt/orders/{big_order(client)}/") == few[f"/mgmt/orders/{small}/"]
    with django_assert_max_num_queries(20):
        client.get("/mgmt/orders/")
    # The order page reads its Radar warnings and reviews (two queries, issue 21).
    with django_assert_max_num_queries(22):
        client.get(f"/mgmt/orders/{small}/")


def changelists() -> list[str]:
    return [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model in admin.site._registry
    ]


def test_every_admin_changelist_takes_the_same_queries_for_5_or_50_rows(client):
    client.force_login(staff_member("boss@example.com"))
    from accounts.models import User

    User.objects.filter(email="boss@example.com").update(is_superuser=True)
    Destination.objects.create(name="ops", webhook_id="1", token="t")
    pool = make_product(license_kind="pool", name="Game")
    populate(5, pool)
    few = {url: count(client, url) for url in changelists()}
    populate(45, pool)
    many = {url: count(client, url) for url in changelists()}
    assert many == few
