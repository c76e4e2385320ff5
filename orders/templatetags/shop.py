from django import template

from shop.money import format_money

register = template.Library()


@register.filter
def money(minor: int | None, currency: str = "usd") -> str:
    """1999|money:"usd" → "$19.99"; 1999|money:"jpy" → "¥1,999" (see shop.money)."""
    return format_money(minor, currency)
