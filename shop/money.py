"""Money: integer minor units plus a currency, shown and parsed with that currency's precision.

Stripe's API decides how many minor units a currency has (its "zero-decimal" and "three-decimal"
lists; every other currency has two, ISK included, although ISK is charged in whole krónur).
Babel (CLDR) decides how an amount looks: symbol, grouping, and the decimals people expect.
"""

import functools
import re
from decimal import Decimal

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


def smallest_refund(currency: str) -> int:
    """The smallest step Stripe moves money in: three-decimal currencies end in 0 (KWD 1.230,
    not 1.235), and ISK, two-decimal in the API, is paid in whole krónur
    (docs.stripe.com/currencies#three-decimal and #special-cases)."""
    code = (currency or "").upper()
    return 10 if code in THREE_DECIMAL else 100 if code == "ISK" else 1


def to_decimal(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-exponent(currency))


def format_money(minor: int | None, currency: str) -> str:
    """1999 usd → "$19.99", 1999 jpy → "¥1,999", 1230 kwd → "KWD 1.230", 1999 chf → "CHF 19.99"."""
    if minor is None:
        return "—"
    return _formatted(minor, currency)


def format_signed(minor: int, currency: str) -> str:
    """A sum that may fall below zero (a net after a chargeback): written with a true minus
    sign (U+2212), as the pages and embeds write it."""
    return format_money(minor, currency) if minor >= 0 else "−" + format_money(-minor, currency)


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


# What may separate groups of thousands besides a comma or a dot: spaces of every kind (French,
# the narrow no-break space CLDR uses) and the Swiss apostrophe.
GROUP_MARKS = " \u00a0\u202f\u2009'\u2019"
GROUPS = re.compile(r"\d{1,3}(?:\x00\d{3})+")  # "1 234 567" with its marks made \x00


def parse_money(text: str, currency: str) -> int:
    """What a person typed → minor units, read the way they write it; ValueError in words when it
    is not an amount of this currency (not a number, negative, finer than its smallest unit, or
    ambiguous).

    A comma or a dot may be the decimal separator ("2,50" is two and a half euros, as "2.50" is);
    when both appear, the last one is, and the other separates thousands. A separator is never
    dropped silently: groups of thousands must be groups of three, and "1,500" (a thousand and
    five hundred, or one and a half?) is refused in a currency with decimals, with a way to
    write it unambiguously."""
    typed = str(text).strip()
    body = typed.translate({ord(mark): "\x00" for mark in GROUP_MARKS})
    if not body or any(c not in "0123456789,.\x00" for c in body) or not body[0].isdigit():
        raise ValueError(f"{typed!r} is not an amount.")
    whole, fraction = _split(body, typed, exponent(currency))
    if "\x00" in whole and not GROUPS.fullmatch(whole):
        raise ValueError(f"{typed!r} is not an amount: thousands are grouped by three digits.")
    if "\x00" in fraction:
        raise ValueError(f"{typed!r} is not an amount.")
    amount = Decimal(whole.replace("\x00", "") + ("." + fraction if fraction else ""))
    minor = amount.scaleb(exponent(currency))
    if minor != minor.to_integral_value():
        unit = format_money(1, currency)
        raise ValueError(f"{(currency or '').upper()} amounts go down to {unit}, not further.")
    return int(minor)


def _split(body: str, typed: str, digits: int) -> tuple[str, str]:
    """(whole part with its group marks as \x00, decimals) of a typed amount."""
    marks = [c for c in body if c in ",."]
    if not marks:
        return body, ""
    decimal = marks[-1]
    grouping = {",": ".", ".": ","}[decimal]
    if marks.count(decimal) > 1:  # "1.234.567": every one of them groups
        if grouping in marks:
            raise ValueError(f"{typed!r} is not an amount.")
        return body.replace(decimal, "\x00"), ""
    whole, fraction = body.rsplit(decimal, 1)
    if grouping not in marks and len(fraction) == 3 and len(whole) <= 3 and digits != 3:
        # "1,234" groups (no currency but a three-decimal one has a thousandth), and so does
        # "1,000" in yen; "1,500" in dollars could be either: it is asked, not guessed.
        if digits == 0 or not fraction.endswith("0"):
            return f"{whole}\x00{fraction}", ""
        raise ValueError(
            f"{typed!r} could mean {whole}{fraction} or {whole}.{fraction[:digits]}: write it "
            f"without the separator, or with {digits} decimals."
        )
    return whole.replace(grouping, "\x00"), fraction
