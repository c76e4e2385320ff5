"""The /mgmt overview: money, orders, what needs staff, stock, the workers, and 30 days drawn as
an SVG chart on the server (no script, no CDN). A fixed number of queries, whatever the data."""

from datetime import date, datetime, time, timedelta

from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.urls import reverse
from django.utils import timezone

from licenses.models import License, LicenseStatus, PoolKey
from notifications.models import Delivery
from orders import disputes
from orders.amounts import TOTAL
from orders.models import (
    Dispute,
    FraudWarning,
    LicenseKind,
    Order,
    Product,
    Refund,
    Review,
    Status,
)
from shop.money import format_money
from workers.health import health_report

from . import chart, disputes_due


def _starts(now: datetime) -> dict[str, datetime]:
    today = timezone.make_aware(datetime.combine(timezone.localdate(now), time.min))
    return {
        "today": today,
        "week": today - timedelta(days=today.weekday()),
        "month": today.replace(day=1),
    }


def revenue(now: datetime) -> list[dict]:
    """Per currency: paid, less refunds, chargebacks and dispute fees, today, this week and this
    month (three queries), as the orders' ledgers (orders.amounts.ledger) count them."""
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
    taken = ~Q(status__in=[*disputes.INQUIRY, *disputes.FAVOURABLE])
    disputed = Dispute.objects.filter(created_at__gte=starts["month"])
    disputed = disputed.values("currency", "fee_currency").order_by()
    disputed = disputed.annotate(
        **{p: Sum("amount_cents", filter=taken & Q(created_at__gte=s)) for p, s in starts.items()},
        **{f"fee_{p}": Sum("fee_cents", filter=Q(created_at__gte=s)) for p, s in starts.items()},
    )
    net: dict[str, dict[str, int]] = {}

    def add(currency: str, period: str, amount: int | None) -> None:
        net.setdefault(currency.lower(), dict.fromkeys(starts, 0))[period] += amount or 0

    for sign, rows in ((1, paid), (-1, refunded)):
        for row in rows:
            for period in starts:
                add(row["currency"], period, sign * (row[period] or 0))
    for row in disputed:
        for period in starts:
            add(row["currency"], period, -(row[period] or 0))
            if row[f"fee_{period}"]:
                add(row["fee_currency"] or row["currency"], period, -row[f"fee_{period}"])
    return [
        {"currency": c.upper(), **{p: format_money(v, c) for p, v in sums.items()}}
        for c, sums in sorted(net.items())
    ]


def by_status() -> list[dict]:
    """Orders per status; failed ones say how many were abandoned checkouts (no payment refused)."""
    counts = dict(Order.objects.values_list("status").annotate(n=Count("id")).order_by())
    abandoned = Order.objects.filter(status=Status.FAILED, failure_code="expired").count()
    return [
        {
            "status": s,
            "count": counts.get(s, 0),
            "abandoned": abandoned if s == Status.FAILED else None,
        }
        for s in Status.values
    ]


def conversion(now: datetime) -> dict:
    """Of the checkouts started in the last 30 days, how many were paid."""
    recent = Order.objects.filter(created_at__gte=now - timedelta(days=chart.CHART_DAYS))
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


def daily_figures(now: datetime) -> chart.Daily:
    """The chart's figures: orders placed per day, and what was paid per day in each currency,
    over the CHART_DAYS days up to `now` (two queries)."""
    first = timezone.localdate(now) - timedelta(days=chart.CHART_DAYS - 1)
    start = timezone.make_aware(datetime.combine(first, time.min))
    orders = dict(
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
    revenue: dict[str, dict[date, int]] = {}
    for currency, day, total in paid:
        revenue.setdefault(currency.lower(), {})[day] = total
    return chart.Daily(first=first, orders=orders, revenue=revenue)


EXPIRY_HORIZON = timedelta(days=30)


def expiring_licenses(now: datetime):
    """Active licenses whose expiry falls in the next 30 days, soonest first, with how many
    devices each is activated on."""
    active_devices = Count("activations", filter=Q(activations__deactivated_at=None))
    return (
        License.objects.filter(
            status=LicenseStatus.ACTIVE, expires_at__gt=now, expires_at__lte=now + EXPIRY_HORIZON
        )
        .select_related("order", "product")
        .annotate(devices=active_devices)
        .order_by("expires_at", "id")
    )


def _counted(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def needs_action(health: dict) -> list[tuple[str, str]]:
    """(what waits for staff, where to act) besides the disputes and failed refunds listed
    below: licenses waiting for pool keys, Discord held back (a ban, a destination switched
    off, with the messages it holds) and messages or key emails given up. `health`: /healthz's
    report, so the card and /healthz agree."""
    waiting = License.objects.filter(status=LicenseStatus.PENDING).count()
    discord = health.get("discord", {})
    notifications = reverse("mgmt:notifications")
    lines = [
        (_counted(waiting, "license waits", "licenses wait") + " for pool keys: import keys",
         reverse("mgmt:licenses")) if waiting else None,
        ("Discord has banned the shop's address: every message waits", notifications)
        if discord.get("state") == "banned" else None,
    ]  # fmt: skip
    if discord.get("destinations_disabled"):
        held = Delivery.objects.filter(status="pending", destination__enabled=False).count()
        off = _counted(
            discord["destinations_disabled"], "Discord destination is", "destinations are"
        )
        lines.append((f"{off} switched off, holding {_counted(held, 'message', 'messages')}",
                      notifications))  # fmt: skip
    if health.get("outbox_dead"):
        dead = _counted(health["outbox_dead"], "Discord message", "Discord messages")
        lines.append((f"{dead} given up: send again", notifications))
    if health.get("key_emails_dead"):
        dead = _counted(health["key_emails_dead"], "key email", "key emails")
        # The admin lists them (each order's /mgmt page has Send again; the admin, for many).
        dead_emails = reverse("admin:licenses_keyemail_changelist") + "?status__exact=dead"
        lines.append((f"{dead} refused by the mail server: send again", dead_emails))
    return [line for line in lines if line]


def overview() -> dict:
    now = timezone.now()
    health = health_report(now)
    return {
        "expiring": expiring_licenses(now).count(),
        "revenue": revenue(now),
        "by_status": by_status(),
        "conversion": conversion(now),
        "refund_failures": list(
            Order.objects.exclude(refund_failed_at=None).order_by("refund_failed_at")[:20]
        ),
        "disputes": disputes_due.needing_response(limit=20),
        # Radar: warnings Stripe calls actionable on orders not refunded, and reviews holding keys.
        "fraud_warnings": list(
            FraudWarning.objects.filter(actionable=True)
            .exclude(order__status=Status.REFUNDED)
            .select_related("order")
            .order_by("created_at", "id")[:20]
        ),
        "reviews": list(
            Review.objects.filter(open=True)
            .select_related("order")
            .order_by("created_at", "id")[:20]
        ),
        "stock": pool_stock(),
        "health": health,
        "workers": health["workers"],
        "needs": needs_action(health),
        "chart": chart.draw(daily_figures(now)),
    }
