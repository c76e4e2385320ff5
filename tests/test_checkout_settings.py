"""STRIPE_ALLOW_PROMOTION_CODES and STRIPE_AUTOMATIC_TAX (issue 21): passed through to the
Checkout Session (the fake Stripe records what the SDK sent), and tried offline on the TEST MODE
checkout page (TEST10 = 10% off, a 20% tax line), recorded from the session as Stripe reports
them: the discount and tax show on the receipt, /account and the embeds."""

import re

import pytest

from notifications.models import Notification
from orders.models import Order
from tests.account_support import sign_in
from tests.factories import make_product
from tests.test_stripe_gateway import buy

pytestmark = pytest.mark.django_db(transaction=True)


def session_form(fake_stripe) -> dict[str, str]:
    [sent] = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    return sent.form


def test_off_by_default_the_session_allows_no_codes_and_adds_no_tax(client, fake_stripe):
    buy(client, make_product(price_cents=4900))
    form = session_form(fake_stripe)
    assert "allow_promotion_codes" not in form
    assert not any(name.startswith("automatic_tax") for name in form)


def test_on_the_session_allows_codes_and_stripe_tax(client, fake_stripe, settings):
    settings.STRIPE_ALLOW_PROMOTION_CODES = True
    settings.STRIPE_AUTOMATIC_TAX = True
    buy(client, make_product(price_cents=4900))
    form = session_form(fake_stripe)
    assert form["allow_promotion_codes"] == "true"
    assert form["automatic_tax[enabled]"] == "true"


# TEST MODE (no Stripe key): the offline gateway's own checkout page.


def offline_buy(client, price_cents: int = 5000) -> Order:
    product = make_product(price_cents=price_cents)
    response = client.post(f"/checkout/{product.slug}/", {"email": "ada@example.com"})
    assert response.status_code == 303
    return Order.objects.get(email="ada@example.com")


def page_of(client, order: Order) -> str:
    response = client.get(f"/test-gateway/checkout/{order.stripe_session_id}/")
    assert response.status_code == 200
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def press(client, order: Order, action: str, **data: str):
    return client.post(
        f"/test-gateway/checkout/{order.stripe_session_id}/", {"action": action, **data}
    )


def test_test_mode_offers_no_code_box_and_no_tax_by_default(client):
    order = offline_buy(client)
    page = page_of(client, order)
    assert "Promotion code" not in page and "Tax" not in page
    refused = press(client, order, "apply_code", promotion_code="TEST10")
    assert "This checkout takes no promotion codes." in refused.content.decode()


def test_test_mode_takes_test10_adds_tax_and_the_order_records_both(client, settings):
    settings.STRIPE_ALLOW_PROMOTION_CODES = True
    settings.STRIPE_AUTOMATIC_TAX = True
    order = offline_buy(client, price_cents=5000)
    page = page_of(client, order)
    assert "Promotion code" in page
    assert "Tax (20%, TEST MODE) $10.00" in page  # on $50.00

    wrong = press(client, order, "apply_code", promotion_code="FREE100")
    assert "This code is invalid." in wrong.content.decode()
    assert press(client, order, "apply_code", promotion_code="test10").status_code == 303
    page = page_of(client, order)
    assert "Discount −$5.00" in page
    assert "Tax (20%, TEST MODE) $9.00" in page  # on what is left after the discount
    assert "Total $54.00" in page

    assert press(client, order, "pay").status_code == 303
    order.refresh_from_db()
    assert order.status == "completed"
    assert (order.amount_total_cents, order.discount_cents, order.tax_cents) == (5400, 500, 900)

    sign_in(client, "ada@example.com")
    account = client.get(f"/account/orders/{order.number}/").content.decode()
    assert "Discount" in account and "−$5.00" in account
    assert "$9.00" in account and "$54.00" in account
    completed = Notification.objects.get(order=order, event="order.completed")
    fields = {f["name"]: f["value"] for f in completed.embed["fields"]}
    assert (fields["Total"], fields["Discount"], fields["Tax"]) == ("$54.00", "−$5.00", "$9.00")
