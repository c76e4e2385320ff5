"""Every /mgmt URL, read from the resolver, for anonymous visitors, customers and staff; every
POST needs its CSRF token."""

import pytest
from django.test import Client

from licenses.models import KeyEmail
from notifications.models import Delivery, Destination
from notifications.outbox import enqueue
from tests.account_support import order_in
from tests.factories import make_product
from tests.mgmt_support import customer_member, fill, mgmt_patterns, staff_member

pytestmark = pytest.mark.django_db

# Views that only take a POST (no confirmation page of their own): none, every action confirms.
POST_ONLY: set[str] = set()


@pytest.fixture
def values():
    order = order_in("completed", email="ada@example.com")
    destination = Destination.objects.create(name="shop", webhook_id="1", token="t")
    notification = enqueue("order.completed", {"title": "x"}, order=order)
    delivery = Delivery.objects.get(notification=notification, destination=destination)
    make_product(license_kind="pool", slug="pool", name="Pool game")
    return {
        "number": order.number,
        "pk": order.licenses.get().pk,
        "destination": destination.pk,
        "delivery": delivery.pk,
        "email": KeyEmail.objects.filter(order=order).first().pk,
    }


def urls(values: dict) -> list[tuple[str, str]]:
    found = []
    for pattern in mgmt_patterns():
        given = dict(values)
        for kind in ("destination", "delivery", "email"):
            if kind in pattern.name:
                given["pk"] = values[kind]
        found.append((pattern.name, fill(pattern, given)))
    return found


def test_the_urls_cover_every_mgmt_view(values):
    names = [name for name, _ in urls(values)]
    assert len(names) == len(set(names)) >= 20
    assert {"overview", "orders", "export", "order", "refund", "notifications"} <= set(names)


@pytest.mark.parametrize("who", ["anonymous", "customer"])
def test_nobody_but_staff_gets_a_page_only_the_login(values, who, client):
    if who == "customer":
        client.force_login(customer_member())
    for name, url in urls(values):
        for method in (client.get, client.post):
            response = method(url)
            assert response.status_code == 302, (name, method)
            assert response["Location"].startswith("/admin/login/"), name


def test_staff_get_every_page_or_its_confirmation(values, client):
    client.force_login(staff_member())
    for name, url in urls(values):
        response = client.get(url)
        expected = 405 if name in POST_ONLY else 200
        assert response.status_code == expected, (name, response.status_code)


def test_every_post_needs_the_csrf_token(values):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_member())
    for name, url in urls(values):
        assert client.post(url).status_code == 403, name


def test_staff_sign_in_with_the_admins_password_login(client):
    staff_member("ops@example.com")
    response = client.get("/mgmt/orders/")
    assert response.status_code == 302
    login = response["Location"]
    assert login == "/admin/login/?next=/mgmt/orders/"
    answer = client.post(login, {"username": "ops@example.com", "password": "pw"})
    assert answer["Location"] == "/mgmt/orders/"
    assert client.get("/mgmt/orders/").status_code == 200
