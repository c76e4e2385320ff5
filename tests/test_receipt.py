"""The receipt (issue 22): amounts, payment method and keys on the thank-you page (keys only to the
browser that bought, or the signed-in buyer), in the keys email and on /account; both pages word
the history with one helper, and /account shows times; the emails to the buyer are listed on the
order's pages."""

import re

import pytest
from django.core import mail
from django.test import Client

from licenses.emails import send_key_emails
from licenses.models import KeyEmail
from orders.models import Order
from testkit.stripe_objects import refund_obj
from tests.account_support import OTHER, OWNER, client_as, order_in, sign_in, tell
from tests.factories import make_product
from tests.mgmt_support import staff_member

# The TEST MODE checkout delivers its events once its transaction commits.
pytestmark = pytest.mark.django_db(transaction=True)


def buy_and_pay(client: Client, email: str = OWNER, quantity: int = 1) -> Order:
    """Buy Now then pay on the TEST MODE checkout, in `client`'s browser."""
    product = make_product(name="Nebula Pro")
    data = {"email": email, "quantity": quantity}
    response = client.post(f"/checkout/{product.slug}/", data)
    assert response.status_code == 303, response.content
    order = Order.objects.get(email=email)
    paid = client.post(f"/test-gateway/checkout/{order.stripe_session_id}/", {"action": "pay"})
    assert paid.status_code == 303
    client.get(paid["Location"], follow=True)  # Stripe's success redirect, then the receipt
    order.refresh_from_db()
    assert order.status == "completed"
    return order


def refund(order: Order, amount: int) -> None:
    """Stripe's refund of the payment the TEST MODE checkout took."""
    ids = {"payment_intent": order.stripe_payment_intent_id, "charge": order.stripe_charge_id}
    tell(order, "refund.created", refund_obj(order, f"re_{amount}", amount, **ids))


def receipt_url(order: Order) -> str:
    return f"/orders/{order.public_id}/"


def key_of(order: Order) -> str:
    return order.licenses.get().key


def test_the_browser_that_bought_sees_its_keys_and_the_receipt_once_paid(client):
    order = buy_and_pay(client)
    response = client.get(receipt_url(order))
    page = response.content.decode()

    assert key_of(order) in page
    assert "Receipt" in page and "Nebula Pro" in page
    assert "Subtotal" in page and "$25.00" in page
    assert "Paid with Visa •••• 4242 on " in page
    # Nothing on the way may keep a page with keys.
    assert "no-store" in response["Cache-Control"] or "private" in response["Cache-Control"]


def test_the_thank_you_page_says_each_keys_terms(client):
    product = make_product(name="Nebula Pro", max_activations=3, license_days=365)
    client.post(f"/checkout/{product.slug}/", {"email": OWNER, "quantity": 1})
    order = Order.objects.get(email=OWNER)
    client.post(f"/test-gateway/checkout/{order.stripe_session_id}/", {"action": "pay"})
    license = order.licenses.get()
    page = client.get(receipt_url(order)).content.decode()
    assert "Use it on up to 3 devices at a time" in page
    assert f"it expires on {license.expires_at:%-d %B %Y}" in page


def test_anyone_else_holding_the_link_sees_the_receipt_but_no_key(client):
    order = buy_and_pay(client)
    for other in (Client(), client_as("other"), client_as("staff")):
        page = other.get(receipt_url(order)).content.decode()
        assert "Receipt" in page and "$25.00" in page
        assert key_of(order) not in page
        assert "keys-title" not in page


def test_the_signed_in_buyer_sees_the_keys_in_another_browser(client):
    order = buy_and_pay(client)
    page = client_as("owner").get(receipt_url(order)).content.decode()
    assert key_of(order) in page


def test_a_stripe_success_link_alone_shows_no_key(client):
    order = buy_and_pay(client)
    stranger = Client()
    response = stranger.get(f"/checkout/success/?session_id={order.stripe_session_id}", follow=True)
    assert response.status_code == 200
    assert key_of(order) not in response.content.decode()


def test_an_unpaid_order_shows_no_keys_even_to_the_browser_that_placed_it(client):
    product = make_product()
    client.post(f"/checkout/{product.slug}/", {"email": OWNER, "quantity": 1})
    order = Order.objects.get(email=OWNER)
    page = client.get(receipt_url(order)).content.decode()
    assert "keys-title" not in page
    assert "To pay" in page and "Paid" not in page.split("Receipt", 1)[1].split("</table>")[0]


def test_a_refunded_orders_receipt_shows_the_refund_and_no_usable_key(client):
    order = buy_and_pay(client)
    key = key_of(order)
    refund(order, order.total_cents)
    page = client.get(receipt_url(order)).content.decode()

    assert key not in page
    assert f"…{key[-4:]}" in page and "Revoked: the order was refunded." in page
    assert "Refunded" in page and "−$25.00" in page and "Net" in page


def test_the_receipt_page_and_account_word_the_history_the_same_way(client):
    order = buy_and_pay(client)
    refund(order, 1000)
    words = re.compile(
        r'<li><time datetime="[^"]+">([^<]+)</time>.*?<span class="words">([^<]+)</span>'
    )

    receipt = words.findall(client.get(receipt_url(order)).content.decode())
    account = words.findall(
        client_as("owner").get(f"/account/orders/{order.number}/").content.decode()
    )
    assert receipt == [w for w in account if w in receipt] and len(receipt) == 3
    assert [text for _, text in receipt] == ["Order placed", "Payment received", "Refunded $10.00"]
    assert all(re.search(r"\d\d:\d\d", when) for when, _ in receipt)


def test_account_lists_orders_with_their_time_not_only_the_day(client):
    order = buy_and_pay(client)
    page = client_as("owner").get("/account/").content.decode()
    assert order.created_at.strftime("%H:%M") in page


def test_the_keys_email_carries_the_receipt(client):
    order = buy_and_pay(client)
    mail.outbox.clear()
    send_key_emails()
    (message,) = mail.outbox
    assert key_of(order) in message.body
    assert "Receipt" in message.body and "Nebula Pro × 1: $25.00" in message.body
    assert "Paid: $25.00" in message.body and "Paid with Visa •••• 4242" in message.body


def test_the_receipt_page_takes_a_fixed_number_of_queries(client, django_assert_max_num_queries):
    order = buy_and_pay(client, quantity=6)
    refund(order, 1000)
    with django_assert_max_num_queries(14):
        page = client.get(receipt_url(order)).content.decode()
    assert page.count('class="license ') == 6


def test_the_emails_to_the_buyer_are_listed_on_account_and_mgmt(
    client, django_assert_max_num_queries
):
    order = order_in("refunded", email=OWNER)
    send_key_emails()
    KeyEmail.objects.filter(order=order, kind="refunded").update(status="dead", attempts=10)

    account = client_as("owner").get(f"/account/orders/{order.number}/").content.decode()
    assert "Emails we sent you" in account
    assert "License keys" in account and "Refund made" in account
    assert "failed: not delivered" in account and "sent" in account
    staff = Client()
    staff.force_login(staff_member(role="Support"))
    with django_assert_max_num_queries(20):
        mgmt = staff.get(f"/mgmt/orders/{order.number}/").content.decode()
    assert "Emails to the customer" in mgmt
    assert f"Refund of $25.00 for order {order.number}" in mgmt and "10 attempts" in mgmt


def test_a_stranger_never_sees_the_emails_of_an_order(client):
    order = order_in("refunded", email=OWNER)
    sign_in(client, OTHER)
    response = client.get(f"/account/orders/{order.number}/")
    assert response.status_code == 404
    assert b"Refund made" not in response.content
