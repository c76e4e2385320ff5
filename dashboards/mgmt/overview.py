"""The /mgmt overview: money, orders, what needs staff, stock, the workers, and 30 days drawn as
an SVG chart on the server (no script, no CDN). A fixed number of queries, whatever the data."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from licenses.models import License, LicenseStatus, PoolKey
from orders.amounts import TOTAL
from orders.models import LicenseKind, Order, Product, Refund, Status
from shop.money import format_money
from workers.health import worker_states

from . import disputes_due

CHART_DAYS = 30
CHART_W, CHART_H = 600, 160


def _starts(now: datetime) -> dict[str, datetime]:
    today = timezone.make_aware(datetime.combine(timezone.localdate(now), time.min))
    return {
        "today": today,
        "week": today - timedelta(days=today.weekday()),
        "month": today.replace(day=1),
    }


def revenue(now: datetime) -> list[dict]:
    """Per currency: paid minus refunded today, this week and this month (two queries)."""
    starts = _starts(now)
    paid = Order.objects.filter(paid_at__gte=starts["month"]).values("currency").order_by()
    paid = paid.annotate(
        **{p: Sum(TOTAL, filter=Q(paid_at__gte=start)) for p, start in starts.items()}
    )
    refunded = Refund.objects.filter(
        status=Refund.State.SUCCEEDED, created_at__gte=starts["month"]
    ).values("currency").order_by()  # fmt: skip
    refunded = refunded.annotate(
        **{p: Sum("amount_cents", filter=Q(created_at__gte=s)) for p, s in starts.items()}
    )
    net: dict[str, dict[str, int]] = {}
    for sign, rows in ((1, paid), (-1, refunded)):
        for row in rows:
            sums = net.setdefault(row["currency"].lower(), dict.fromkeys(starts, 0))
            for period in starts:
                sums[period] += sign * (row[period] or 0)
    return [
        {"currency": c.upper(), **{p: format_money(v, c) for p, v in sums.items()}}
        for c, sums in sorted(net.items())
    ]


def by_status() -> list[dict]:
    counts = dict(Order.objects.values_list("status").annotate(n=Count("id")).order_by())
    return [{"status": s, "count": counts.get(s, 0)} for s in Status.values]


def conversion(now: datetime) -> dict:
    """Of the checkouts started in the last 30 days, how many were paid."""
    recent = Order.objects.filter(created_at__gte=now - timedelta(days=CHART_DAYS))
    counts = recent.exclude(stripe_session_id="").aggregate(
        started=Count("id"), paid=Count("id", filter=Q(paid_at__isnull=False))
    )
    started, paid = counts["started"], counts["paid"]
    return {"started": started, "paid": paid, "rate": f"{paid / started:.0%}" if started else "—"}


def pool_stock() -> list[dict]:
    in_stock = PoolKey.objects.filter(product=OuterRef("pk"), claimed_at=None)
    waiting = License.objects.filter(product=OuterRef("pk"), status=LicenseStatus.PENDING)
    count = lambda rows: Subquery(  # noqa: E731
        rows.order_by().values("product").annotate(n=Count("id")).values("n")
    )
    products = Product.objects.filter(license_kind=LicenseKind.POOL).annotate(
        stock=Coalesce(count(in_stock), 0), waiting=Coalesce(count(waiting), 0)
    )
    return [
        {
            "product": p,
            "stock": p.stock,
            "waiting": p.waiting,
            "low": p.stock < p.stock_alert_threshold,
        }
        for p in products
    ]


@dataclass(frozen=True)
class Bar:
    day: date
    x: float
    y: float
    height: float
    orders: int
    revenue: str


def chart(now: datetime) -> dict:
    """Orders per day as bars and revenue per day (the busiest currency) as a line."""
    first = timezone.localdate(now) - timedelta(days=CHART_DAYS - 1)
    start = timezone.make_aware(datetime.combine(first, time.min))
    per_day = dict(
        Order.objects.filter(created_at__gte=start)
        .annotate(day=TruncDate("created_at"))
        .values_list("day")
        .annotate(n=Count("id"))
        .order_by()
    )
    paid = (
        Order.objects.filter(paid_at__gte=start)
        .annotate(day=TruncDate("paid_at"))
        .values_list("currency", "day")
        .annotate(total=Sum(TOTAL))
        .order_by()
    )
    by_currency: dict[str, dict[date, int]] = {}
    for currency, day, total in paid:
        by_currency.setdefault(currency.lower(), {})[day] = total
    currency = max(by_currency, key=lambda c: sum(by_currency[c].values()), default="usd")
    money = by_currency.get(currency, {})
    days = [first + timedelta(days=n) for n in range(CHART_DAYS)]
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


def overview() -> dict:
    now = timezone.now()
    return {
        "revenue": revenue(now),
        "by_status": by_status(),
        "conversion": conversion(now),
        "refund_failures": list(
            Order.objects.exclude(refund_failed_at=None).order_by("refund_failed_at")[:20]
        ),
        "disputes": disputes_due.needing_response(limit=20),
        "stock": pool_stock(),
        "workers": worker_states(now),
        "chart": chart(now),
    }
