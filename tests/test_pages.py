"""What a buyer sees when something is off: every error page is a page of the shop (HTML, the
right status), and the words are a person's, not Stripe's codes."""

import pytest
from django.core import mail
from django.test import Client

from licenses.emails import send_key_emails
from orders.models import LicenseKind
from orders.payment_methods import describe_payment_method
from testkit.signing import signed_post
from testkit.stripe_objects import charge_obj, make_event, session_obj
from tests.factories import make_order, make_product

pytestmark = pytest.mark.django_db


def assert_html_page(response, status: int, *texts: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "text/html; charset=utf-8"
    page = response.content.decode()
    assert page.startswith("<!doctype html>")
    assert 'class="brand"' in page  # the shop's layout, not a bare error
    for text in texts:
        assert text in page


def test_the_success_page_without_a_session_answers_400_with_a_page(client):
    assert_html_page(client.get("/checkout/success/"), 400, "no checkout session")
    assert_html_page(
        client.get("/checkout/success/?session_id={CHECKOUT_SESSION_ID}"), 400, "no checkout"
    )


def test_an_unknown_checkout_session_or_order_answers_404_with_a_page(client):
    assert_html_page(client.get("/checkout/success/?session_id=cs_test_nope"), 404, "Not found")
    assert_html_page(client.get("/orders/not-a-uuid/"), 404, "Not found")
    assert_html_page(client.get("/no/such/page/"), 404, "Not found")


def test_a_form_without_its_csrf_token_answers_403_with_a_page(db):
    product = make_product()
    response = Client(enforce_csrf_checks=True).post(f"/checkout/{product.slug}/", {})
    assert_html_page(response, 403, "This form has expired")


def test_a_server_error_shows_the_shops_500_page(client, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("orders.views.find_order", boom)
    client.raise_request_exception = False
    response = client.get("/orders/00000000-0000-0000-0000-000000000000/")
    assert_html_page(response, 500, "Something went wrong on our side")
    assert "boom" not in response.content.decode()


def test_favicon_ico_leads_to_the_shops_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("favicon.svg")
    assert 'rel="icon"' in client.get("/").content.decode()


@pytest.mark.parametrize(
    ("details", "words"),
    [
        ({"type": "card", "card": {"brand": "visa", "last4": "4242"}}, "Visa •••• 4242"),
        (
            {"type": "card", "card": {"brand": "amex", "last4": "0005"}},
            "American Express •••• 0005",
        ),
        ({"type": "sepa_debit", "sepa_debit": {"last4": "3000"}}, "SEPA Direct Debit •••• 3000"),
        (
            {"type": "us_bank_account", "us_bank_account": {"last4": "6789"}},
            "US bank account •••• 6789",
        ),
        ({"type": "ideal", "ideal": {"bank": "ing"}}, "iDEAL"),
        (
            {
                "type": "card",
                "card": {"brand": "mastercard", "last4": "4444", "wallet": {"type": "apple_pay"}},
            },
            "Apple Pay (Mastercard •••• 4444)",
        ),
        ({"type": "new_method_2027", "new_method_2027": {}}, "New method 2027"),
        ({}, ""),
        (None, ""),
    ],
)
def test_payment_methods_read_as_people_write_them(details, words):
    assert describe_payment_method(details) == words


def test_the_order_page_shows_the_payment_method_in_words(client):
    order = make_order()
    signed_post(client, make_event("checkout.session.completed", session_obj(order)))
    signed_post(client, make_event("charge.refunded", charge_obj(order)))
    page = client.get(f"/orders/{order.public_id}/").content.decode()
    assert "Paid with Visa •••• 4242 on " in page


def test_a_pool_key_out_of_stock_is_explained_alike_on_the_page_and_in_the_email(client):
    product = make_product(name="Starfall", license_kind=LicenseKind.POOL)
    order = make_order(product=product)
    signed_post(client, make_event("checkout.session.completed", session_obj(order)))
    send_key_emails()

    sentence = "Your key is on its way: it is not in stock yet, and we will email it to you as soon as it is."
    page = client.get(f"/orders/{order.public_id}/").content.decode()
    assert f"Starfall: {sentence}" in page
    assert f"Starfall: {sentence}" in mail.outbox[0].body
