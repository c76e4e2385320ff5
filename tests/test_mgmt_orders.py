"""The staff order list: tabs with counts, search by number, email and every Stripe id, dates,
sorts, keyset pages, the live fragment, and the CSV export of the same filter."""

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from dashboards.mgmt import search
from notifications.embeds import order_link
from notifications.models import Notification
from orders.models import Order
from testkit.stripe_objects import dispute_obj, refund_obj
from tests.account_support import order_in, tell
from tests.factories import make_order
from tests.mgmt_support import staff_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(staff_member())
    return client


def numbers(response) -> list[str]:
    return [row.number for row in response.context["rows"]]


def test_tabs_count_each_status_and_filter_by_it(staff_client):
    completed = order_in("completed", email="a@example.com")
    failed = order_in("failed", email="b@example.com")
    order_in("pending", email="c@example.com")
    response = staff_client.get("/mgmt/orders/")
    counts = {tab.label: tab.count for tab in response.context["tabs"]}
    assert counts == {"All": "3", "Pending": "1", "Completed": "1", "Failed": "1",
                      "Refunded": "0", "Disputed": "0"}  # fmt: skip
    assert numbers(staff_client.get("/mgmt/orders/?status=completed")) == [completed.number]
    assert numbers(staff_client.get("/mgmt/orders/?status=failed")) == [failed.number]
    empty = staff_client.get("/mgmt/orders/?status=refunded").content.decode()
    assert "No orders here" in empty


def test_counts_stop_at_the_limit(staff_client, monkeypatch):
    monkeypatch.setattr(search, "COUNT_LIMIT", 2)
    for n in range(3):
        make_order(email=f"x{n}@example.com")
    tabs = staff_client.get("/mgmt/orders/").context["tabs"]
    assert tabs[0].count == "2+"


def test_search_finds_an_order_by_number_email_and_each_stripe_id(staff_client):
    order = order_in("completed", email="ada@example.com")
    tell(order, "refund.created", refund_obj(order, "re_123", 100))
    tell(order, "charge.dispute.created", dispute_obj(order, "dp_456"))
    order.stripe_charge_id = "ch_789"
    order.save()
    order_in("completed", email="bob@example.com")
    for q in [order.number, order.number.lower(), "ADA@example.com", order.stripe_session_id,
              order.stripe_payment_intent_id, "ch_789", "re_123", "dp_456"]:  # fmt: skip
        assert numbers(staff_client.get("/mgmt/orders/", {"q": q})) == [order.number], q
    assert numbers(staff_client.get("/mgmt/orders/", {"q": "nobody@example.com"})) == []
    assert numbers(staff_client.get("/mgmt/orders/", {"q": "re_nothing"})) == []


def test_dates_bound_the_list_and_nonsense_is_ignored(staff_client):
    old = make_order()
    Order.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    new = make_order()
    today = timezone.localdate().isoformat()
    assert numbers(staff_client.get("/mgmt/orders/", {"since": today})) == [new.number]
    week_ago = (timezone.localdate() - timedelta(days=7)).isoformat()
    assert numbers(staff_client.get("/mgmt/orders/", {"until": week_ago})) == [old.number]
    nonsense = {"since": "yesterday", "sort": "evil", "after": "x_y", "status": "paid"}
    assert numbers(staff_client.get("/mgmt/orders/", nonsense)) == [new.number, old.number]


@pytest.mark.parametrize(
    ("dates", "words"),
    [
        ({"until": "9999-12-31"}, "Dates run from 1 January 2000 to 31 December 2999"),
        ({"since": "0001-01-01"}, "Dates run from 1 January 2000 to 31 December 2999"),
        ({"since": "2026-05-02", "until": "2026-05-01"}, "“From” is after “To”"),
    ],
)
def test_dates_out_of_range_or_reversed_are_a_400_that_says_why(staff_client, dates, words):
    order = make_order()
    for url in ("/mgmt/orders/", "/mgmt/orders/export.csv"):
        response = staff_client.get(url, dates)
        assert response.status_code == 400, url
        html = response.content.decode()
        assert words in html and "the dates are not applied" in html, url
        assert order.number in html  # the list without the dates, under the error


def test_sorts_and_keyset_pages_show_each_order_once(staff_client, monkeypatch):
    monkeypatch.setattr("dashboards.mgmt.listing.PAGE_SIZE", 2)
    orders = [make_order(quantity=q) for q in (1, 3, 2, 3, 1)]
    for sort, expected in [
        ("newest", [o.number for o in reversed(orders)]),
        ("oldest", [o.number for o in orders]),
        ("total", [o.number for o in sorted(orders, key=lambda o: (-o.total_cents, -o.pk))]),
    ]:
        seen, url = [], f"/mgmt/orders/?sort={sort}"
        while url:
            response = staff_client.get(url)
            seen += numbers(response)
            url = response.context["next_url"]
        assert seen == expected, sort


def test_the_live_fragment_brings_a_new_order_to_the_top(staff_client):
    first = make_order()
    page = staff_client.get("/mgmt/orders/").content.decode()
    assert 'hx-trigger="every 5s, visible-again from:document"' in page and "data-poll" in page
    new = make_order()
    fragment = staff_client.get("/mgmt/orders/", headers={"HX-Request": "true"})
    assert numbers(fragment) == [new.number, first.number]
    assert "<html" not in fragment.content.decode()
    deep = staff_client.get(f"/mgmt/orders/?after={new.pk}_{new.pk}").content.decode()
    assert "data-poll" not in deep  # an older page stays where it is


def test_the_order_page_follows_webhook_changes_in_its_fragment(staff_client):
    order = order_in("completed", email="ada@example.com")
    url = f"/mgmt/orders/{order.number}/"
    assert "data-poll" in staff_client.get(url).content.decode()
    tell(order, "charge.dispute.created", dispute_obj(order, "dp_1"))
    fragment = staff_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert '<span class="status disputed">' in fragment and "evidence due" in fragment


def test_the_export_streams_the_filtered_orders_with_the_designs_columns(staff_client):
    completed = order_in("completed", email="=cmd@example.com")
    order_in("failed", email="b@example.com")
    response = staff_client.get("/mgmt/orders/export.csv?status=completed")
    assert response.streaming and response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:10] == ["number", "public_id", "status", "email", "total_cents", "currency",
                       "created_at", "stripe_session_id", "stripe_payment_intent_id", "licenses"]  # fmt: skip
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["number"] == "#" + completed.number and row["status"] == "completed"
    assert row["email"] == "'=cmd@example.com"  # never a formula in a spreadsheet
    assert row["total_cents"] == "2500" and row["licenses"] == "active"
    assert completed.licenses.get().key not in ",".join(rows[1])


def test_the_export_walks_every_chunk(staff_client, monkeypatch):
    from dashboards.mgmt import export

    real = search.chunks
    monkeypatch.setattr(export, "chunks", lambda orders, **kw: real(orders, size=2, **kw))
    made = {make_order().number for _ in range(5)}
    body = b"".join(staff_client.get("/mgmt/orders/export.csv").streaming_content).decode()
    assert {line.split(",")[0].lstrip("#") for line in body.splitlines()[1:]} == made


def test_every_embed_links_to_the_orders_page_for_staff(staff_client, settings):
    settings.SITE_URL = "https://shop.example.com"
    order = order_in("refunded", email="ada@example.com")
    embeds = [n.embed for n in Notification.objects.filter(order=order)]
    assert embeds
    for embed in embeds:
        link = embed["url"]
        assert link == order_link(order) == f"https://shop.example.com/mgmt/orders/{order.number}/"
        path = link.removeprefix(settings.SITE_URL)
        response = staff_client.get(path)
        assert response.status_code == 200
        assert response.context["order"] == order
