"""/mgmt/notifications previews every recorded notification, even with no destination, drawn as
Discord draws it: the title links to the order, the time is the reader's."""

import pytest

from accounts.models import User
from notifications.models import Delivery, Notification
from tests.account_support import order_in
from tests.mgmt_support import staff_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(staff_member(role="Support"))
    return client


def test_without_any_destination_every_notification_is_previewed(staff_client, settings):
    settings.DISCORD_WEBHOOK_URL = ""
    order = order_in("completed", email="ada@example.com")
    recorded = Notification.objects.filter(order=order)
    assert recorded.exists() and not Delivery.objects.exists()
    page = staff_client.get("/mgmt/notifications/").content.decode()
    assert "Recorded for no destination" in page
    assert page.count('<article class="notification">') == recorded.count()
    assert (
        f"/mgmt/orders/{order.number}/" in page
    )  # Discord's link (in the text: no dot in localhost)


def test_the_preview_links_its_title_and_shows_the_readers_time(staff_client, settings):
    from django.template.loader import render_to_string
    from django.utils import timezone

    embed = {"title": "Order paid", "url": "https://shop.example/mgmt/orders/AB12CD34/",
             "timestamp": "2026-12-07T23:30:00+00:00"}  # fmt: skip
    with timezone.override("Asia/Tokyo"):
        html = render_to_string("notifications/embed_preview.html", {"embed": embed})
    assert '<a href="https://shop.example/mgmt/orders/AB12CD34/">Order paid</a>' in html
    assert '<time datetime="2026-12-07T23:30:00+00:00">8 Dec 2026, 08:30 JST</time>' in html
    sneaky = render_to_string(
        "notifications/embed_preview.html", {"embed": {"title": "x", "url": "javascript:alert(1)"}}
    )
    assert "javascript:" not in sneaky and "<a " not in sneaky


def test_the_staff_members_zone_draws_the_previews(staff_client, settings):
    settings.DISCORD_WEBHOOK_URL = ""
    User.objects.filter(email="staff@example.com").update(time_zone="Asia/Tokyo")
    order_in("completed", email="ada@example.com")
    page = staff_client.get("/mgmt/notifications/").content.decode()
    assert " JST</time>" in page
