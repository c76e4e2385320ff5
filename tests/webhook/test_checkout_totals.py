"""Discount, tax and Adaptive Pricing as the paying Checkout Session tells them (issue 21), from
Stripe's example session (fixtures3.json's `checkout.session`, whose own example is an Adaptive
Pricing session with `currency_conversion`)."""

import pytest

from orders.models import PaymentMismatch
from testkit.stripe_objects import FIXTURES, session_obj
from tests.webhook.support import send

pytestmark = pytest.mark.django_db


def details(discount: int = 0, tax: int = 0) -> dict[str, int]:
    return {"amount_discount": discount, "amount_shipping": 0, "amount_tax": tax}


def test_a_promotion_code_and_tax_are_recorded_from_the_paying_session(client, order):
    price = order.subtotal_cents
    session = session_obj(
        order, amount_total=price - 250 + 180, total_details=details(discount=250, tax=180)
    )

    send(client, order, "checkout.session.completed", session)

    assert order.status == "completed"
    assert (order.amount_total_cents, order.discount_cents, order.tax_cents) == (
        price - 250 + 180,
        250,
        180,
    )


def test_a_session_paid_less_than_asked_without_a_discount_completes_nothing(client, order):
    session = session_obj(order, amount_total=order.subtotal_cents - 250)

    send(client, order, "checkout.session.completed", session)

    assert order.status == "pending"
    assert (order.discount_cents, order.tax_cents) == (0, 0)
    assert PaymentMismatch.objects.get(order=order).problem.startswith("Paid")


def test_tax_on_top_of_the_price_is_accepted(client, order):
    session = session_obj(
        order, amount_total=order.subtotal_cents + 500, total_details=details(tax=500)
    )
    send(client, order, "checkout.session.completed", session)
    assert (order.status, order.tax_cents) == ("completed", 500)


def adaptive_session(order, *, discount: int = 0, tax: int = 0) -> dict:
    """A pre-2025-03-31 Adaptive Pricing session: the buyer paid in EUR (at the top, with the
    session's totals), the shop priced in USD (`currency_conversion`), as Stripe's example has
    it. Rate 0.924 EUR per USD."""
    assert set(FIXTURES["checkout.session"]["currency_conversion"]) == {
        "amount_subtotal",
        "amount_total",
        "fx_rate",
        "source_currency",
    }
    ours = order.subtotal_cents
    paid_usd = ours - discount + tax

    def eur(usd: int) -> int:
        return round(usd * 0.924)

    return session_obj(
        order,
        currency="eur",
        amount_subtotal=eur(ours),
        amount_total=eur(paid_usd),
        total_details=details(discount=eur(discount), tax=eur(tax)),
        currency_conversion={
            "amount_subtotal": ours,
            "amount_total": paid_usd,
            "fx_rate": "0.924",
            "source_currency": order.currency,
        },
    )


def test_an_adaptive_pricing_session_records_the_shops_currency_and_amount(client, order):
    assert order.currency == "usd"
    send(client, order, "checkout.session.completed", adaptive_session(order))

    assert order.status == "completed"
    assert (order.currency, order.amount_total_cents) == ("usd", order.subtotal_cents)
    assert not PaymentMismatch.objects.exists()


def test_an_adaptive_pricing_discount_is_counted_in_the_shops_currency(client, order):
    """Its `total_details` are in the buyer's currency: a EUR discount must not be added to a
    USD total as if it were dollars (nor recorded as such)."""
    session = adaptive_session(order, discount=500, tax=300)

    send(client, order, "checkout.session.completed", session)

    assert order.status == "completed"
    assert order.amount_total_cents == order.subtotal_cents - 500 + 300
    assert (order.discount_cents, order.tax_cents) == (500, 300)


def test_an_adaptive_pricing_session_paid_short_is_refused(client, order):
    session = adaptive_session(order)
    session["currency_conversion"]["amount_total"] = order.subtotal_cents - 400
    send(client, order, "checkout.session.completed", session)
    assert order.status == "pending"
    assert PaymentMismatch.objects.filter(order=order).exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"total_details": {"amount_discount": "500", "amount_shipping": 0, "amount_tax": 0}},
        {"total_details": {"amount_discount": -1, "amount_shipping": 0, "amount_tax": 0}},
        {"total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 2**64}},
        {"total_details": "none"},
        {"currency_conversion": {"amount_total": 1.5, "source_currency": "usd"}},
        {"currency_conversion": {"amount_subtotal": "1", "source_currency": "usd"}},
        {"currency_conversion": {"amount_total": 100, "source_currency": 7}},
        {"amount_subtotal": -5},
    ],
)
def test_a_discount_tax_or_conversion_stripe_never_sends_is_refused_and_nothing_stored(
    client, order, fields
):
    from orders.models import StripeEvent
    from testkit.signing import signed_post
    from testkit.stripe_objects import make_event

    event = make_event("checkout.session.completed", session_obj(order, **fields))
    response = signed_post(client, event)
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()
    order.refresh_from_db()
    assert order.status == "pending"
