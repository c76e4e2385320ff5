"""The /mgmt overview's chart, drawn on the server as SVG geometry (no script, no CDN): orders per
day as bars, and revenue per day (the busiest currency) as a line. It reads no database: the
overview's `daily_figures` brings the figures, and the template turns this geometry into
<rect> and <polyline>."""

from dataclasses import dataclass
from datetime import date, timedelta

from shop.money import format_money

CHART_DAYS = 30
CHART_W, CHART_H = 600, 160


@dataclass(frozen=True)
class Daily:
    """What the chart shows, per day from `first` on: orders placed, and the amounts paid in
    each currency (lower case)."""

    first: date
    orders: dict[date, int]
    revenue: dict[str, dict[date, int]]


@dataclass(frozen=True)
class Bar:
    day: date
    x: float
    y: float
    height: float
    orders: int
    revenue: str


def draw(figures: Daily) -> dict:
    """The chart's bars, line, scale and caption for the template, in a box CHART_W wide and CHART_H high."""
    per_day, by_currency = figures.orders, figures.revenue
    currency = max(by_currency, key=lambda c: sum(by_currency[c].values()), default="usd")
    money = by_currency.get(currency, {})
    days = [figures.first + timedelta(days=n) for n in range(CHART_DAYS)]
    top_orders = max([per_day.get(d, 0) for d in days] + [1])
    top_money = max([money.get(d, 0) for d in days] + [1])
    step = CHART_W / CHART_DAYS
    bars, points = [], []
    for n, day in enumerate(days):
        height = CHART_H * per_day.get(day, 0) / top_orders
        bars.append(
            Bar(
                day=day,
                x=round(n * step + 2, 1),
                y=round(CHART_H - height, 1),
                height=round(height, 1),
                orders=per_day.get(day, 0),
                revenue=format_money(money.get(day, 0), currency),
            )
        )
        y = CHART_H - CHART_H * money.get(day, 0) / top_money
        points.append(f"{n * step + step / 2:.1f},{y:.1f}")
    return {
        "bars": bars,
        "bar_width": round(step - 4, 1),
        "line": " ".join(points),
        "currency": currency.upper(),
        "top_orders": top_orders,
        "top_revenue": format_money(top_money, currency) if money else "",
        "empty": not per_day and not money,
        "width": CHART_W,
        "height": CHART_H,
        "first": days[0],
        "last": days[-1],
    }
