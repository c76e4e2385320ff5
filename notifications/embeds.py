"""Embeds: what each event shows, fitted into Discord's limits (counted in code points).

Long customer input is shortened, never rejected. License keys are never put in an embed. A link
is sent as the embed's `url` only where Discord shows it: its host has a dot, and no earlier embed
of the same message has that `url`; otherwise it heads the description (`for_message`).
"""

import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from shop.money import format_money as money

from .events import COLOURS, Event

LIMITS = {
    "title": 256,
    "description": 4096,
    "field_name": 256,
    "field_value": 1024,
    "footer": 2048,
    "author": 256,
}
MAX_FIELDS = 25
MESSAGE_TOTAL = 6000
ELLIPSIS = "…"


def _cut(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: max(0, limit - 1)] + ELLIPSIS


# Discord renders markdown in embed titles, descriptions and field values: emphasis (* _ ~),
# code (`), spoilers (|), quotes (>), headings (#), masked links ([…](…)), mentions and
# timestamps (<…>), emoji and autolinks (:). A backslash before any of them shows it as typed.
MARKDOWN = re.compile(r"([\\*_~`|<>\[\]()#:])")
# Lists and subtext (-#) start a line: "- item", "1. first". Elsewhere - and . are plain text.
LINE_START = re.compile(r"(?m)^(\s*)(-|\d+\.)")


class Markdown(str):
    """Text the shop writes as Discord markdown on purpose (a timestamp): sent as it is, where
    everything else in a field is escaped."""


def as_text(text: str) -> str:
    """`text` shown as it is: a product named `[click](https://…)` or an email such as
    `"**x**"@x.com` would otherwise be a link, or bold."""
    if isinstance(text, Markdown):
        return text
    escaped = MARKDOWN.sub(r"\\\1", str(text))
    return LINE_START.sub(lambda m: m.group(1) + _escape_marker(m.group(2)), escaped)


def _escape_marker(marker: str) -> str:
    return "\\-" if marker == "-" else marker[:-1] + "\\."


def embed_size(embed: dict[str, Any]) -> int:
    """Characters that count towards Discord's 6000 per message."""
    size = len(embed.get("title", "")) + len(embed.get("description", ""))
    size += len((embed.get("footer") or {}).get("text", "")) + len(
        (embed.get("author") or {}).get("name", "")
    )
    return size + sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))


def fit(embed: dict[str, Any], budget: int = MESSAGE_TOTAL) -> dict[str, Any]:
    """A copy of `embed` within every per-part limit and within `budget` characters in all,
    shortening the longest texts first."""
    embed = {**embed, "fields": [dict(f) for f in embed.get("fields", [])][:MAX_FIELDS]}
    if "title" in embed:
        embed["title"] = _cut(embed["title"], LIMITS["title"])
    if "description" in embed:
        embed["description"] = _cut(embed["description"], LIMITS["description"])
    if "footer" in embed:
        embed["footer"] = {
            **embed["footer"],
            "text": _cut(embed["footer"]["text"], LIMITS["footer"]),
        }
    if "author" in embed:  # counted in the 6000 too: an uncut name never fits, and fit never ends
        embed["author"] = {
            **embed["author"],
            "name": _cut(embed["author"]["name"], LIMITS["author"]),
        }
    for f in embed["fields"]:
        f["name"] = _cut(f["name"], LIMITS["field_name"]) or "\u200b"
        f["value"] = _cut(f["value"], LIMITS["field_value"]) or "\u200b"
    while (excess := embed_size(embed) - budget) > 0:
        parts = [("description", None)] if embed.get("description") else []
        parts += [("value", i) for i in range(len(embed["fields"]))] + [("title", None)]
        kind, index = max(parts, key=lambda p: len(_get(embed, *p)))
        text = _get(embed, kind, index)
        if len(text) <= 1:
            embed["fields"] = embed["fields"][:-1]  # nothing left to shorten: drop a field
            continue
        _set(embed, kind, index, _cut(text, max(1, len(text) - excess)))
    return embed


def _get(embed, kind, index):
    return embed["fields"][index]["value"] if kind == "value" else embed.get(kind, "")


def _set(embed, kind, index, text):
    if kind == "value":
        embed["fields"][index]["value"] = text
    else:
        embed[kind] = text


def when(value: datetime | None) -> Markdown:
    """A Discord timestamp: each reader sees it in their own time zone."""
    return Markdown(f"<t:{int(value.timestamp())}:f>" if value else "")


def order_link(order) -> str:
    return f"{settings.SITE_URL}/{settings.MGMT_PATH}/orders/{order.number}/"


def linkable(url: str) -> bool:
    """Whether Discord takes `url` as an embed's link: it answers 400 (`{"embeds": ["0"]}`) to a
    host without a dot, such as the default http://localhost:8000 or http://shop:8000."""
    host = urlsplit(url).hostname or ""
    return "." in host.strip(".")


def link_in_description(embed: dict[str, Any]) -> dict[str, Any]:
    """The embed with its `url` moved to the head of its description, where fitting it into
    the limits never cuts it."""
    embed = dict(embed)
    link = embed.pop("url")
    text = embed.get("description")
    embed["description"] = f"{link}\n{text}" if text else link
    return fit(embed)


def for_message(embeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The embeds as one message carries them. Discord shows only the first of several embeds
    sharing a `url` (message resource docs), and every event of an order links to it: later ones
    keep the link in their description. A link Discord would refuse moves there too. Stored
    embeds keep their `url` (previews, the fallback): only what is sent is shaped."""
    shaped, seen = [], set()
    for embed in embeds:
        url = embed.get("url")
        if url is not None and (url in seen or not linkable(url)):
            embed = link_in_description(embed)
        elif url is not None:
            seen.add(url)
        shaped.append(embed)
    return shaped


TITLES = {
    Event.CHECKOUT_STARTED: "Checkout started",
    Event.ORDER_PENDING: "Order pending",
    Event.PAYMENT_COMPLETED: "Payment confirmed",
    Event.ORDER_COMPLETED: "Order completed",
    Event.PAYMENT_FAILED: "Payment failed",
    Event.ORDER_REFUNDED: "Order refunded",
    Event.ORDER_DISPUTED: "Payment disputed",
    Event.ORDER_DISPUTE_CLOSED: "Dispute closed",
    Event.ORDER_REFUND_FAILED: "Refund failed",
    Event.ORDER_REFUND_PENDING: "Refund pending",
    Event.ORDER_PAYMENT_MISMATCH: "Payment not for this order",
    Event.ORDER_FRAUD_WARNING: "Early fraud warning",
}


def order_embed(
    event: str, order, extra: list[tuple[str, str]] = (), *, title: str = ""
) -> dict[str, Any]:
    """Every field value is escaped (product names, the email, staff notes, refund and decline
    reasons are typed by someone), except `Markdown` the shop wrote on purpose. `title` words
    the event more closely than its usual title (an abandoned checkout is no refused payment)."""
    items = "\n".join(f"{item.quantity} × {item.product.name}" for item in order.line_items())
    fields = [
        ("Customer", order.email),
        ("Items", items),
        ("Total", money(order.total_cents, order.currency)),
    ]
    if order.discount_cents:
        fields.append(("Discount", "−" + money(order.discount_cents, order.currency)))
    if order.tax_cents:
        fields.append(("Tax", money(order.tax_cents, order.currency)))
    if order.payment_method:
        fields.append(("Payment method", order.payment_method))
    fields += [(name, value) for name, value in extra if value]
    fields = [(name, as_text(value)) for name, value in fields]
    return fit(
        {
            "title": f"{title or TITLES[event]}: order {order.number}",
            "url": order_link(order),
            "color": COLOURS[event],
            "fields": [{"name": n, "value": v, "inline": len(v) < 40} for n, v in fields],
            "footer": {"text": "License Shop"},
            "timestamp": timezone.now().isoformat(),
        }
    )


def stock_embed(product, remaining: int, threshold: int) -> dict[str, Any]:
    state = "is out of stock" if remaining == 0 else f"has {remaining} key(s) left"
    return fit(
        {
            "title": as_text(f"License stock low: {product.name}"),
            "description": as_text(
                f"{product.name} {state} (alert under {threshold}). Import keys in the admin."
            ),
            "color": COLOURS[Event.LICENSE_STOCK_LOW],
            "fields": [{"name": "Remaining", "value": str(remaining), "inline": True}],
            "timestamp": timezone.now().isoformat(),
        }
    )


def activation_limit_embed(license, activation) -> dict[str, Any]:
    """A license used its last activation. The device's label is the customer's own text: shown
    as text (no markdown, links or mentions) and shortened by `fit`, like every customer input."""
    order = license.order
    limit = license.max_activations
    return fit(
        {
            "title": f"Activation limit reached: {license.product.name}",
            "url": order_link(order),
            "color": COLOURS[Event.LICENSE_ACTIVATION_LIMIT_REACHED],
            "description": (
                f"A license of order {order.number} is now active on all {limit} of its devices;"
                " the next device will be refused until one is deactivated."
            ),
            "fields": [
                {"name": "Customer", "value": as_text(order.email), "inline": False},
                {"name": "Activations", "value": f"{limit} of {limit}", "inline": True},
                {
                    "name": "Last device",
                    "value": as_text(activation.label) or "(no name given)",
                    "inline": True,
                },
            ],
            "footer": {"text": "License Shop"},
            "timestamp": timezone.now().isoformat(),
        }
    )


def fallback_embed(embed: dict[str, Any]) -> dict[str, Any]:
    """What is sent once Discord refused an embed (400): the title and the link, nothing more.
    The link is text, never the `url`: Discord may have refused the embed for its `url`."""
    note = "Discord refused the full message; open the order for the details."
    link = embed.get("url") or ""
    return {
        "title": _cut(embed.get("title") or "Notification", 200),
        "description": f"{note}\n{link}" if link else note,
        "color": embed.get("color", 0),
    }
