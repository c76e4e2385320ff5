"""What the overview, notifications, events and licenses pages tell staff."""

from datetime import timedelta

import pytest
from django.utils import timezone

from licenses.models import PoolKey
from notifications.models import Delivery, Destination
from notifications.outbox import enqueue
from orders.models import Dispute, StripeEvent
from testkit.stripe_objects import dispute_obj, refund_obj
from tests.account_support import order_in, tell
from tests.factories import make_product
from tests.mgmt_support import staff_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(staff_member())
    return client


def test_the_overview_counts_revenue_net_of_refunds_per_currency(staff_client):
    order_in("completed", email="a@example.com", quantity=2)  # $50.00
    paid = order_in("completed", email="b@example.com")  # $25.00
    tell(paid, "refund.created", refund_obj(paid, "re_1", 1000))  # -$10.00
    order_in(
        "completed", email="c@example.com", product=make_product(price_cents=1999, currency="jpy")
    )
    order_in("pending", email="d@example.com")
    context = staff_client.get("/mgmt/").context
    revenue = {row["currency"]: row for row in context["revenue"]}
    assert revenue["USD"]["today"] == revenue["USD"]["month"] == "$65.00"
    assert revenue["JPY"]["today"] == "¥1,999"
    counts = {row["status"]: row["count"] for row in context["by_status"]}
    assert (counts["completed"], counts["pending"], counts["failed"]) == (3, 1, 0)
    assert context["conversion"] == {"started": 4, "paid": 3, "rate": "75%"}
    today = context["chart"]["bars"][-1]
    assert today.orders == 4 and today.revenue == "$75.00"


def test_the_overview_takes_chargebacks_and_their_fees_from_revenue(staff_client):
    order_in("completed", email="a@example.com", quantity=2)  # $50.00
    lost = order_in("completed", email="b@example.com")  # $25.00
    tell(lost, "refund.created", refund_obj(lost, "re_1", 1000))  # -$10.00
    withdrawal = {"id": "txn_1", "object": "balance_transaction", "amount": -2500, "fee": 1500,
                  "currency": "usd"}  # fmt: skip
    tell(
        lost,
        "charge.dispute.closed",
        dispute_obj(lost, "dp_1", "lost", balance_transactions=[withdrawal]),
    )
    inquiry = order_in("completed", email="c@example.com")  # an inquiry takes no money
    tell(inquiry, "charge.dispute.created", dispute_obj(inquiry, "dp_2", "warning_needs_response"))

    revenue = {row["currency"]: row for row in staff_client.get("/mgmt/").context["revenue"]}

    # 50 + 25 + 25 paid, 10 refunded, 25 charged back with a 15 fee.
    assert revenue["USD"]["today"] == revenue["USD"]["month"] == "$50.00"


def test_disputes_that_need_evidence_come_soonest_first(staff_client):
    later = order_in("disputed", email="a@example.com")
    sooner = order_in("disputed", email="b@example.com")
    order_in("completed", email="c@example.com")
    now = timezone.now()
    Dispute.objects.filter(order=later).update(evidence_due_by=now + timedelta(days=9))
    Dispute.objects.filter(order=sooner).update(evidence_due_by=now + timedelta(days=2))
    disputes = staff_client.get("/mgmt/").context["disputes"]
    assert [d.order for d in disputes] == [sooner, later]


def test_the_overview_shows_pool_stock_and_the_workers(staff_client):
    pool = make_product(license_kind="pool", name="Game", stock_alert_threshold=3)
    PoolKey.objects.create(product=pool, key="K-1", key_hash="h1")
    order_in("completed", email="a@example.com", product=pool, quantity=2)  # one key, one waits
    context = staff_client.get("/mgmt/").context
    assert [(r["product"], r["stock"], r["waiting"], r["low"]) for r in context["stock"]] == [
        (pool, 0, 1, True)
    ]
    assert context["workers"]["deliver_notifications"]["state"] == "never seen"
    page = staff_client.get("/mgmt/licenses/").content.decode()
    assert "Waiting for a key" in page and "Game" in page


def test_notifications_show_each_destinations_health_and_filter_the_log(staff_client):
    ops = Destination.objects.create(name="ops", webhook_id="1", token="secret-token")
    order = order_in("completed", email="a@example.com")
    dead = Delivery.objects.filter(destination=ops).first()
    Delivery.objects.filter(pk=dead.pk).update(status="dead")
    enqueue("order.completed", {"title": "x"}, order=order)
    response = staff_client.get("/mgmt/notifications/")
    row, buttons = response.context["destinations"][0]
    assert [button.label for button in buttons] == ["Send a test message", "Disable"]
    assert (row.backlog, row.dead) == (Delivery.objects.filter(status="pending").count(), 1)
    assert "secret-token" not in response.content.decode()
    log = staff_client.get("/mgmt/notifications/?status=dead")
    assert [d.pk for d in log.context["deliveries"]] == [dead.pk]
    assert f"/mgmt/deliveries/{dead.pk}/resend/?back=log" in log.content.decode()
    assert 'class="embed embed-c-' in log.content.decode()


def test_events_are_filtered_by_outcome(staff_client):
    def stored(id: str, **fields) -> StripeEvent:
        defaults = {"type": "charge.refunded", "created": 1, "payload": {}, "outcome": "applied"}
        return StripeEvent.objects.create(id=id, **{**defaults, **fields})

    stored("evt_unknown", outcome="unknown_order")
    stored("evt_unhandled", outcome="unhandled", type="customer.created")
    stored("evt_live", outcome="livemode_mismatch", livemode=True)
    stored("evt_broken", outcome="unknown_order", detail="could not be applied late: KeyError")
    stored("evt_fine")
    for outcome, expected in [
        ("unknown_order", {"evt_unknown", "evt_broken"}),
        ("unhandled", {"evt_unhandled"}),
        ("livemode_mismatch", {"evt_live"}),
        ("not_applied", {"evt_broken"}),
        ("", {"evt_unknown", "evt_unhandled", "evt_live", "evt_broken", "evt_fine"}),
    ]:
        events = staff_client.get("/mgmt/events/", {"outcome": outcome}).context["events"]
        assert {e.id for e in events} == expected, outcome


def test_every_page_has_an_empty_state(staff_client):
    for url, words in [
        ("/mgmt/", "Nothing waits for you"),
        ("/mgmt/orders/", "No orders here"),
        ("/mgmt/notifications/", "No destination yet"),
        ("/mgmt/events/", "No events here"),
        ("/mgmt/licenses/", "No pool products"),
    ]:
        assert words in staff_client.get(url).content.decode(), url


def test_the_embed_preview_shows_discords_timestamps_as_dates():
    from django.template.loader import render_to_string

    embed = {"title": "Due <t:1796794100:f>", "fields": [{"name": "At", "value": "<t:0>"}]}
    html = render_to_string("notifications/embed_preview.html", {"embed": embed})
    assert "&lt;t:" not in html
    assert "Due 9 December 2026 " in html and "1 January 1970 00:00 UTC" in html


def test_the_overview_chart_says_so_when_there_is_nothing_to_draw(staff_client):
    page = staff_client.get("/mgmt/").content.decode()
    assert "No orders in the last 30 days." in page
    assert "<svg" not in page and "most 1" not in page

    order_in("pending", email="a@example.com")  # an order, no payment yet
    page = staff_client.get("/mgmt/").content.decode()
    assert "<svg" in page and "orders per day (most 1)" in page
    assert "no payments yet" in page and "most $0.00" not in page
