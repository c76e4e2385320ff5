"""Money: integer minor units plus a currency, shown and parsed with that currency's precision.

Stripe's API decides how many minor units a currency has (its "zero-decimal" and "three-decimal"
lists; every other currency has two, ISK included, although ISK is charged in whole krónur).
Babel (CLDR) decides how an amount looks: symbol, grouping, and the decimals people expect.
"""

import functools
from decimal import Decimal, InvalidOperation

from babel import Locale
from babel.numbers import NumberPattern, get_currency_precision, get_currency_symbol, parse_pattern
from babel.numbers import format_currency as _format

# https://docs.stripe.com/currencies#zero-decimal and #three-decimal
ZERO_DECIMAL = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
THREE_DECIMAL = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])
LOCALE = "en_US"
_LOCALE = Locale.parse(LOCALE)


def exponent(currency: str) -> int:
    """How many digits of an amount are minor units in Stripe's API: ¥1999 is 1999, $19.99 is 1999."""
    code = (currency or "").upper()
    return 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2


def to_decimal(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-exponent(currency))


def format_money(minor: int | None, currency: str) -> str:
    """1999 usd → "$19.99", 1999 jpy → "¥1,999", 1230 kwd → "KWD 1.230", 1999 chf → "CHF 19.99"."""
    if minor is None:
        return "—"
    return _formatted(minor, currency)


@functools.lru_cache(maxsize=4096)
def _formatted(minor: int, currency: str) -> str:
    """Remembered: a shop shows the same few prices again and again (every embed has three or
    four), and Babel took longer to format one than the webhook took to write its audit row."""
    code = (currency or "").upper() or "USD"
    digits = exponent(code)
    # Show fewer decimals where people use fewer (ISK in whole krónur), unless that would hide some.
    shown = get_currency_precision(code)
    if shown >= digits or minor % 10 ** (digits - shown):
        shown = digits
    return _format(
        to_decimal(minor, code), code, format=_pattern(code, shown), locale=_LOCALE,
        currency_digits=False,
    )  # fmt: skip


@functools.lru_cache(maxsize=512)
def _pattern(code: str, shown: int) -> NumberPattern:
    """Parsed once per currency: every embed formats amounts, and parsing cost more than
    formatting."""
    symbol = get_currency_symbol(code, LOCALE)
    pattern = "¤" + ("\u00a0" if symbol[-1:].isalpha() else "") + "#,##0"
    return parse_pattern(pattern + ("." + "0" * shown if shown else ""))


def parse_money(text: str, currency: str) -> int:
    """What a person typed ("12", "12.5", "1,200.00") → minor units; ValueError when it is not an
    amount of this currency (not a number, negative, or finer than its smallest unit)."""
    cleaned = str(text).strip().replace(",", "").replace("\u00a0", "").replace(" ", "")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount.") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{text!r} is not an amount.")
    minor = amount.scaleb(exponent(currency))
    if minor != minor.to_integral_value():
        unit = format_money(1, currency)
        raise ValueError(f"{(currency or '').upper()} amounts go down to {unit}, not further.")
    return int(minor)
