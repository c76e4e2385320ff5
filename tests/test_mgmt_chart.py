"""The overview's chart in two halves: `daily_figures` asks the database, `chart.draw` turns the
figures into SVG geometry without it."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from dashboards.mgmt import chart
from dashboards.mgmt.overview import daily_figures
from orders.models import Order
from tests.factories import make_order, make_product

FIRST = date(2026, 11, 1)


def test_drawing_needs_no_database():  # no django_db mark: a query would fail the test
    figures = chart.Daily(
        first=FIRST,
        orders={FIRST: 2, FIRST + timedelta(days=29): 4},
        revenue={"eur": {FIRST: 500}, "usd": {FIRST + timedelta(days=1): 2000}},
    )

    drawn = chart.draw(figures)

    assert (drawn["currency"], drawn["top_orders"], drawn["top_revenue"]) == ("USD", 4, "$20.00")
    first, second, last = drawn["bars"][0], drawn["bars"][1], drawn["bars"][-1]
    assert (first.day, first.orders, first.height, first.y, first.revenue) == (
        FIRST, 2, 80.0, 80.0, "$0.00",
    )  # fmt: skip
    assert (second.revenue, last.height, last.x) == ("$20.00", 160.0, 582.0)
    assert drawn["line"].split()[:2] == ["10.0,160.0", "30.0,0.0"]
    assert (drawn["first"], drawn["last"], drawn["empty"]) == (FIRST, FIRST + timedelta(29), False)


def test_nothing_to_draw_is_said_so():
    drawn = chart.draw(chart.Daily(first=FIRST, orders={}, revenue={}))
    assert drawn["empty"] and drawn["top_revenue"] == "" and drawn["currency"] == "USD"


@pytest.mark.django_db
def test_the_figures_are_orders_per_day_and_paid_totals_per_currency(django_assert_num_queries):
    now = timezone.now()
    today = timezone.localdate(now)
    for days_ago, currency, paid in [(0, "usd", True), (0, "usd", False), (3, "eur", True)]:
        order = make_order(product=make_product(price_cents=1500, currency=currency))
        when = now - timedelta(days=days_ago)
        Order.objects.filter(pk=order.pk).update(created_at=when, paid_at=when if paid else None)
    old = make_order()
    Order.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=40))

    with django_assert_num_queries(2):
        figures = daily_figures(now)

    assert figures.first == today - timedelta(days=chart.CHART_DAYS - 1)
    assert figures.orders == {today: 2, today - timedelta(days=3): 1}
    assert figures.revenue == {"usd": {today: 1500}, "eur": {today - timedelta(days=3): 1500}}
