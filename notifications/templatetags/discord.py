"""Embed text as Discord shows it (for previews)."""

import re
from datetime import UTC, datetime

from django import template
from django.utils import timezone
from django.utils.dateformat import format as format_date

register = template.Library()
ESCAPE = re.compile(r"\\([^0-9A-Za-z\s])")
# Discord's timestamp markup, <t:seconds> or <t:seconds:style>: each reader sees a local date.
TIMESTAMP = re.compile(r"<t:(-?\d{1,12})(?::[tTdDfFR])?>")


def _when(match: re.Match) -> str:
    moment = datetime.fromtimestamp(int(match.group(1)), UTC)
    return format_date(timezone.localtime(moment), "j F Y H:i T")


@register.filter
def as_discord_shows(text: str) -> str:
    """Markdown escapes (`\\[`, `\\_`…) undone and timestamps as dates, as Discord draws them;
    HTML escaping still applies."""
    return TIMESTAMP.sub(_when, ESCAPE.sub(r"\1", str(text)))


@register.filter
def embed_time(value: str) -> str:
    """The embed's ISO 8601 `timestamp` in the reader's zone, as Discord shows it to each
    reader in theirs ("" when it is not a time)."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return ""
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return format_date(timezone.localtime(moment), "j M Y, H:i T")


@register.filter
def embed_link(url: str) -> str:
    """The title's link, as Discord makes it: http(s) only ("" otherwise)."""
    text = str(url or "")
    return text if text.startswith(("https://", "http://")) else ""
