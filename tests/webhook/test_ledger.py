"""The order's money as Stripe moves it (issue 21): 64-bit amounts, refunds whatever event reports
them, pending refunds, chargebacks and their fees in the books."""

import pytest

from orders import amounts
from orders.models import Dispute, Refund
from testkit.signing import signed_post
from testkit.stripe_objects import dispute_obj, make_event, refund_obj, session_obj
from tests.factories import make_order, make_product
from tests.webhook.support import pay, send

pytestmark = pytest.mark.django_db

# The largest amount Stripe accepts per charge: eight digits in most currencies, twelve in IDR
# (docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
LARGEST = [("usd", 99_999_999), ("jpy", 99_999_999), ("kwd", 99_999_999), ("idr", 999_999_999_999)]


@pytest.mark.parametrize(("currency", "largest"), LARGEST)
def test_the_largest_amounts_stripe_allows_are_paid_refunded_and_disputed(
    client, currency, largest
):
    """IDR's twelve digits do not fit 32 bits (2,147,483,647): every amount column is 64-bit."""
    order = make_order(product=make_product(price_cents=largest, currency=currency))
    pay(client, order)
    assert (order.status, order.amount_total_cents) == ("completed", largest)

    send(client, order, "refund.created", refund_obj(order, "re_1", largest - 1))
    send(client, order, "charge.dispute.created", dispute_obj(order, "dp_1", amount=1))

    assert Refund.objects.get().amount_cents == largest - 1
    assert Dispute.objects.get().amount_cents == 1
    assert amounts.refunded(order) == largest - 1
    assert order.status == "disputed"


def test_an_amount_beyond_64_bits_is_refused_with_nothing_stored(client):
    order = make_order()
    event = make_event("checkout.session.completed", session_obj(order, amount_total=2**63))

    response = signed_post(client, event)

    assert response.status_code == 400
    assert "amount_total" in response.json()["error"]
    order.refresh_from_db()
    assert order.status == "pending"
