"""Rows of the staff order list, display-ready."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch
from django.http import QueryDict
from django.urls import reverse

from orders.models import OrderItem
from orders.money import format_money

from .search import (
    COUNT_LIMIT,
    PAGE_SIZE,
    SORTS,
    TABS,
    Criteria,
    cursor_of,
    filtered,
    sorted_page,
    tab_counts,
)


@dataclass(frozen=True)
class Row:
    number: str
    url: str
    placed_at: datetime
    email: str
    items: str
    total: str
    status: str
    refund_failed: bool


@dataclass(frozen=True)
class Tab:
    label: str
    url: str
    count: str
    current: bool


def query(params: dict[str, str], **changes: str) -> str:
    merged = QueryDict(mutable=True)
    merged.update({k: v for k, v in {**params, **changes}.items() if v})
    return "?" + merged.urlencode() if merged else "?"


def _count(n: int, limit: int) -> str:
    return f"{limit:,}+" if n > limit else f"{n:,}"


def orders_list(criteria: Criteria) -> dict:
    products = OrderItem.objects.select_related("product").order_by("id")
    orders = sorted_page(filtered(criteria), criteria).prefetch_related(
        Prefetch("items", queryset=products)
    )
    page = list(orders[: PAGE_SIZE + 1])
    more, page = len(page) > PAGE_SIZE, page[:PAGE_SIZE]
    base = reverse("mgmt:orders")
    counts = tab_counts(criteria)
    return {
        "rows": [
            Row(
                number=order.number,
                url=reverse("mgmt:order", args=[order.number]),
                placed_at=order.created_at,
                email=order.email,
                items=", ".join(f"{i.product.name} × {i.quantity}" for i in order.items.all()),
                total=format_money(order.total_cents, order.currency),
                status=order.status,
                refund_failed=order.refund_failed_at is not None,
            )
            for order in page
        ],
        "tabs": [
            Tab(
                label=tab.capitalize() if tab else "All",
                url=base + query(criteria.params, status=tab),
                count=_count(counts[tab], COUNT_LIMIT),
                current=tab == criteria.status,
            )
            for tab in TABS
        ],
        "criteria": criteria,
        "sorts": SORTS,
        "next_url": base + query(criteria.params, after=cursor_of(page[-1], criteria))
        if more
        else "",
        "first_url": base + query(criteria.params) if criteria.after else "",
        "export_url": reverse("mgmt:export") + query(criteria.params),
        "live_url": base + query(criteria.params),
        # A new order shows at the top of the first page; deeper pages stay where they are.
        "live": criteria.after is None and criteria.sort in ("", "newest"),
    }
