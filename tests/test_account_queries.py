"""/account and its order page take a fixed number of queries, however many orders, items,
licenses and refunds there are."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from testkit.stripe_objects import refund_obj, session_obj
from tests.account_support import sign_in, tell
from tests.factories import add_item, make_order, make_product

pytestmark = pytest.mark.django_db
EMAIL = "ada@example.com"


def paid_order(*, items: int, quantity: int):
    order = make_order(email=EMAIL, quantity=quantity)
    for _ in range(items - 1):
        add_item(order, product=make_product(), quantity=quantity)
    tell(order, "checkout.session.completed", session_obj(order))
    tell(order, "refund.created", refund_obj(order, f"re_{order.number}", 100))
    return order


def queries(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured)


def test_the_order_list_takes_the_same_queries_for_one_order_or_many(
    client, django_assert_max_num_queries
):
    sign_in(client, EMAIL)
    paid_order(items=1, quantity=1)
    one = queries(client, "/account/")
    for _ in range(24):
        paid_order(items=3, quantity=2)
    assert queries(client, "/account/") == one
    assert queries(client, "/account/?page=2") == one
    with django_assert_max_num_queries(5):
        client.get("/account/")


def test_the_order_page_takes_the_same_queries_for_one_item_or_many(
    client, django_assert_max_num_queries
):
    sign_in(client, EMAIL)
    small = paid_order(items=1, quantity=1)
    large = paid_order(items=6, quantity=4)  # 24 licenses
    assert large.licenses.count() == 24
    assert queries(client, f"/account/orders/{large.number}/") == queries(
        client, f"/account/orders/{small.number}/"
    )
    # The licenses' devices and renewals are one query each, whatever their number; the emails
    # sent to the buyer one more.
    with django_assert_max_num_queries(11):
        client.get(f"/account/orders/{large.number}/")
    with django_assert_max_num_queries(11):
        client.get(f"/account/orders/{large.number}/", headers={"HX-Request": "true"})
