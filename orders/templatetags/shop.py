from django import template

register = template.Library()

SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£"}


@register.filter
def money(cents: int | None, currency: str = "usd") -> str:
    """1999, "usd" → "$19.99"; unknown currencies keep their code: "19.99 CHF"."""
    if cents is None:
        return "—"
    amount = f"{cents / 100:,.2f}"
    symbol = SYMBOLS.get((currency or "").lower())
    return f"{symbol}{amount}" if symbol else f"{amount} {(currency or '').upper()}"
