"""Embed text as Discord shows it (for previews)."""

import re

from django import template

register = template.Library()
ESCAPE = re.compile(r"\\([^0-9A-Za-z\s])")


@register.filter
def as_discord_shows(text: str) -> str:
    """Markdown escapes (`\\[`, `\\_`…) undone, as Discord draws them; HTML escaping still applies."""
    return ESCAPE.sub(r"\1", str(text))
