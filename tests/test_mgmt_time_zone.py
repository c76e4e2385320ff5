"""Each staff member reads /mgmt's times in their own zone, named on the page; an unknown zone
is refused in words; customers' pages keep the shop's TIME_ZONE."""

from datetime import UTC, datetime

import pytest

from accounts.models import User
from audit.models import Action
from orders.models import Order
from tests.factories import make_order
from tests.mgmt_support import staff_member

pytestmark = pytest.mark.django_db

PLACED = datetime(2026, 12, 7, 23, 30, tzinfo=UTC)


@pytest.fixture
def order():
    order = make_order(email="ada@example.com")
    Order.objects.filter(pk=order.pk).update(created_at=PLACED)
    return order


def signed_in(client, zone: str = "", email: str = "staff@example.com"):
    user = staff_member(email, role="Support")
    User.objects.filter(pk=user.pk).update(time_zone=zone)
    client.force_login(user)
    return client


def test_the_list_shows_times_in_the_members_zone_and_names_it(client, order, settings):
    settings.TIME_ZONE = "UTC"
    page = signed_in(client, "Asia/Tokyo").get("/mgmt/orders/").content.decode()
    assert "8 Dec 2026, 08:30" in page  # 23:30 UTC is the next morning in Tokyo
    assert "Asia/Tokyo" in page
    order_page = client.get(f"/mgmt/orders/{order.number}/").content.decode()
    assert "Asia/Tokyo" in order_page


def test_without_a_choice_the_shops_time_zone_applies(client, order, settings):
    settings.TIME_ZONE = "America/New_York"
    page = signed_in(client).get("/mgmt/orders/").content.decode()
    assert "7 Dec 2026, 18:30" in page and "America/New_York" in page


def test_a_member_sets_their_zone_and_only_theirs(client, order):
    other = staff_member("other@example.com", role="Support")
    signed_in(client)
    response = client.post("/mgmt/settings/", {"time_zone": " europe/PARIS "})
    assert response.status_code == 303
    assert User.objects.get(email="staff@example.com").time_zone == "Europe/Paris"
    action = Action.objects.get(command="accounts.set_time_zone")
    assert action.user.email == "staff@example.com" and action.detail == "time zone: Europe/Paris"
    assert User.objects.get(pk=other.pk).time_zone == ""
    assert "9 Dec" not in client.get("/mgmt/orders/").content.decode()
    assert "8 Dec 2026, 00:30" in client.get("/mgmt/orders/").content.decode()
    assert (
        client.post("/mgmt/settings/", {"time_zone": ""}).status_code == 303
    )  # back to the shop's
    assert User.objects.get(email="staff@example.com").time_zone == ""


@pytest.mark.parametrize("typed", ["Mars/Olympus", "Paris", "../../etc/passwd", "x" * 64])
def test_an_unknown_zone_is_refused_in_words(client, typed):
    signed_in(client)
    response = client.post("/mgmt/settings/", {"time_zone": typed})
    assert response.status_code == 400
    assert "is not a time zone this server knows" in response.content.decode()
    assert User.objects.get(email="staff@example.com").time_zone == ""


def test_the_settings_page_offers_the_zones_to_pick(client):
    page = signed_in(client).get("/mgmt/settings/").content.decode()
    assert '<option value="Europe/Paris">' in page and 'list="zones"' in page


def test_customers_pages_keep_the_shops_zone(client, order, settings):
    settings.TIME_ZONE = "UTC"
    signed_in(client, "Asia/Tokyo")
    client.get("/mgmt/orders/")
    from django.utils import timezone

    assert timezone.get_current_timezone_name() == "UTC"  # nothing left active after /mgmt
