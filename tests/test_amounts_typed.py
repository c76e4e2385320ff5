"""Amounts as staff type them (issue 22): a comma or a dot may be the decimal separator, and no
separator is ever dropped silently."""

import pytest

from shop.money import parse_money


@pytest.mark.parametrize(
    ("typed", "currency", "minor"),
    [
        ("12", "usd", 1200),
        ("1,5", "usd", 150),  # once read as 15.00
        ("2,50", "eur", 250),  # once read as 250.00
        ("2.50", "eur", 250),
        ("0,01", "usd", 1),
        ("1,234", "usd", 123400),  # a thousandth does not exist in dollars: it groups
        ("1,234.56", "usd", 123456),
        ("1.234,56", "eur", 123456),
        ("1 234,56", "eur", 123456),
        ("1\u202f234,56", "eur", 123456),  # CLDR's narrow no-break space
        ("1'234.50", "chf", 123450),
        ("1,234,567", "usd", 123456700),
        ("1.234.567", "eur", 123456700),
        ("1,000", "jpy", 1000),  # yen have no decimals: it groups
        ("1.235", "kwd", 1235),  # three-decimal money
    ],
)
def test_an_amount_is_read_the_way_it_is_written(typed, currency, minor):
    assert parse_money(typed, currency) == minor


@pytest.mark.parametrize(
    ("typed", "currency", "words"),
    [
        ("1,500", "usd", "could mean 1500 or 1.50"),
        ("1.000", "eur", "could mean 1000 or 1.00"),
        ("12,34.5", "usd", "thousands are grouped by three digits"),
        ("1,5", "jpy", "JPY amounts go down to ¥1"),
        ("1.2345", "kwd", "KWD amounts go down to KWD\u00a00.001"),
        ("1.2.3,4,5", "usd", "is not an amount"),
        ("-5", "usd", "is not an amount"),
        ("NaN", "usd", "is not an amount"),
        ("1e3", "usd", "is not an amount"),
        ("", "usd", "is not an amount"),
    ],
)
def test_an_amount_that_is_not_one_or_could_be_two_is_refused_in_words(typed, currency, words):
    with pytest.raises(ValueError, match=words):
        parse_money(typed, currency)
