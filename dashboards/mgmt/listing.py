"""Rows of the staff order list, display-ready."""

from dataclasses import dataclass

from django.http import QueryDict
from django.urls import reverse
from django.utils import dateformat
from django.utils.timezone import localtime

from accounts.addresses import lookalike_warning
from dashboards.statements import planned_for_each_value
from orders.models import OrderItem, Product
from shop.money import format_money

from .search import (
    FAILURES,
    METHODS,
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
    placed: str  # shown
    placed_iso: str  # for <time datetime>
    email: str
    name: str  # as Checkout collected it
    email_warning: str  # a lookalike address, in words (accounts.addresses)
    items: str
    total: str
    status: str
    refund_failed: bool
    abandoned: bool  # failed because the buyer left the checkout, not because a payment failed


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


LIST_FIELDS = ["number", "created_at", "email", "customer_name", "currency", "subtotal_cents",
               "amount_total_cents", "status", "refund_failed_at", "failure_code"]  # fmt: skip


def items_in_words(order_ids: list[int]) -> dict[int, str]:
    """Each order's items in words, in one query of plain tuples (no model per item)."""
    items: dict[int, list[str]] = {}
    rows = OrderItem.objects.filter(order_id__in=order_ids).order_by("id")
    for order_id, name, quantity in rows.values_list("order_id", "product__name", "quantity"):
        items.setdefault(order_id, []).append(f"{name} × {quantity}")
    return {order_id: ", ".join(names) for order_id, names in items.items()}


def filter_choices() -> dict:
    """The product, currency and payment method selects (one query: the catalog is small)."""
    products = list(Product.objects.order_by("name", "pk").values_list("slug", "name", "currency"))
    return {
        "products": [(slug, name) for slug, name, _ in products],
        "currencies": sorted({currency for _, _, currency in products}),
        "methods": [(key, label) for key, (label, _) in METHODS.items()],
    }


def orders_list(criteria: Criteria) -> dict:
    orders = sorted_page(filtered(criteria), criteria).only(*LIST_FIELDS)
    with planned_for_each_value(criteria.searching):
        page = list(orders[: PAGE_SIZE + 1])
        counts = tab_counts(criteria)
    more, page = len(page) > PAGE_SIZE, page[:PAGE_SIZE]
    base = reverse("mgmt:orders")
    items = items_in_words([order.pk for order in page])
    return {
        "rows": [
            Row(
                number=order.number,
                url=f"{base}{order.number}/",
                placed=dateformat.format(localtime(order.created_at), "j M Y, H:i"),
                placed_iso=order.created_at.isoformat(),
                email=order.email,
                name=order.customer_name,
                email_warning=lookalike_warning(order.email),
                items=items.get(order.pk, ""),
                total=format_money(order.total_cents, order.currency),
                status=order.status,
                refund_failed=order.refund_failed_at is not None,
                abandoned=order.status == "failed" and order.failure_code == "expired",
            )
            for order in page
        ],
        "tabs": [
            Tab(
                label=tab.capitalize() if tab else "All",
                url=base + query(criteria.params, status=tab),
                count=counts[tab],
                current=tab == criteria.status,
            )
            for tab in TABS
        ],
        "criteria": criteria,
        "failures": [
            (label, base + query(criteria.params, failure=key), key == criteria.failure)
            for key, label in FAILURES.items()
        ]
        if criteria.status == "failed"
        else [],
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
