"""/account as anonymous, owner, another customer and staff; what each page shows; CSRF on every
form; the pending order's live fragment."""

import re

import pytest
from django.core.cache import cache
from django.test import Client

from licenses.models import License
from orders.models import LicenseKind, Order
from testkit.stripe_objects import charge_obj, dispute_obj, refund_obj, session_obj
from tests.account_support import (
    OTHER,
    OWNER,
    ask_for_link,
    customer,
    emailed_link,
    order_in,
    tell,
)
from tests.account_support import client_as as as_
from tests.factories import add_item, make_order, make_product

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()


def page(response) -> str:
    assert response["Content-Type"] == "text/html; charset=utf-8"
    return response.content.decode()


WHO = ["anonymous", "owner", "other", "staff"]


@pytest.mark.parametrize("who", WHO)
def test_the_order_list_shows_only_the_signed_in_emails_orders(who):
    order = order_in("completed", email=OWNER)
    response = as_(who).get("/account/")
    if who == "anonymous":
        assert response.status_code == 302
        assert response["Location"] == "/account/login/?next=/account/"
        return
    assert response.status_code == 200
    assert (order.number in page(response)) == (who == "owner")


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "live-fragment"])
def test_an_order_page_is_a_404_to_everyone_but_the_buyer(who, htmx):
    order = order_in("completed", email=OWNER)
    headers = {"HX-Request": "true"} if htmx else {}
    response = as_(who).get(f"/account/orders/{order.number}/", headers=headers)
    if who == "owner":
        assert response.status_code == 200
        assert order.number in page(response)
    else:
        assert response.status_code == 404
        assert "Order not found" in page(response)
        assert "<h2>Items</h2>" not in page(response) and order.email not in page(response)


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("action", ["pay-again", "resend-keys"])
def test_order_actions_are_a_404_to_everyone_but_the_buyer(who, action):
    order = order_in("failed" if action == "pay-again" else "completed", email=OWNER)
    emails = order.key_emails.count()
    response = as_(who).post(f"/account/orders/{order.number}/{action}/")
    order.refresh_from_db()
    done = (order.attempt - 1, order.key_emails.count() - emails)
    if who == "owner":
        assert response.status_code == 303
        assert done == ((1, 0) if action == "pay-again" else (0, 1))
    else:
        assert response.status_code == 404
        assert done == (0, 0)


@pytest.mark.parametrize("who", WHO)
def test_the_sign_in_pages_answer_everyone(who):
    client = as_(who)
    assert client.get("/account/login/").status_code == 200
    assert ask_for_link(client, f"{who}-new@example.com").status_code == 200
    assert client.get(emailed_link()).status_code == 200
    assert client.post("/account/logout/")["Location"] == "/"
    assert client.get("/account/").status_code == 302


def test_a_made_up_order_number_looks_like_another_customers_order():
    order_in("completed", email=OTHER)
    theirs = Order.objects.get(email=OTHER).number
    client = as_("owner")
    made_up = client.get("/account/orders/ZZZZZZZZ/")
    foreign = client.get(f"/account/orders/{theirs}/")
    assert made_up.status_code == foreign.status_code == 404

    def same(html: str, number: str) -> str:
        return re.sub(r'value="\w+"', "", html.replace(number, "NUMBER"))

    assert same(page(made_up), "ZZZZZZZZ") == same(page(foreign), theirs)


def csrf_token_of(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def test_every_form_is_refused_without_its_csrf_token_and_works_with_it():
    failed = order_in("failed", email=OWNER)
    completed = order_in("completed", email=OWNER)
    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/account/login/", {"email": OWNER}).status_code == 403
    ask_for_link(Client(), OWNER)
    link = emailed_link()
    assert strict.post(link).status_code == 403
    strict.force_login(customer(OWNER))
    for path in (
        f"/account/orders/{failed.number}/pay-again/",
        f"/account/orders/{completed.number}/resend-keys/",
        "/account/logout/",
    ):
        assert strict.post(path).status_code == 403, path
    failed.refresh_from_db()
    assert (failed.status, failed.attempt) == ("failed", 1)
    assert completed.key_emails.count() == 1  # only the one sent on completion

    # With the token the pages carry, each form goes through.
    html = page(strict.get(f"/account/orders/{failed.number}/"))
    response = strict.post(
        f"/account/orders/{failed.number}/pay-again/", {"csrfmiddlewaretoken": csrf_token_of(html)}
    )
    assert response.status_code == 303
    html = page(strict.get(f"/account/orders/{completed.number}/"))
    token = csrf_token_of(html)
    assert (
        strict.post(
            f"/account/orders/{completed.number}/resend-keys/", {"csrfmiddlewaretoken": token}
        ).status_code
        == 303
    )
    assert strict.post("/account/logout/", {"csrfmiddlewaretoken": token}).status_code == 303
    html = page(strict.get("/account/login/"))
    data = {"email": OWNER, "csrfmiddlewaretoken": csrf_token_of(html)}
    assert strict.post("/account/login/", data).status_code == 200
    link = emailed_link()
    html = page(strict.get(link))
    assert strict.post(link, {"csrfmiddlewaretoken": csrf_token_of(html)}).status_code == 303


def test_the_list_shows_every_status_newest_first_with_a_word_on_each_badge():
    orders = [
        order_in(s, email=OWNER) for s in ("pending", "completed", "failed", "refunded", "disputed")
    ]
    html = page(as_("owner").get("/account/"))
    positions = [html.index(o.number) for o in orders]
    assert positions == sorted(positions, reverse=True)
    for status in ("Pending", "Completed", "Failed", "Refunded", "Disputed"):
        assert f'<span class="status {status.lower()}">{status}</span>' in html


def test_the_list_is_paginated_by_twenty():
    product = make_product()
    numbers = [make_order(email=OWNER, product=product).number for _ in range(21)]
    client = as_("owner")
    first, second = page(client.get("/account/")), page(client.get("/account/?page=2"))
    assert "Page 1 of 2" in first
    assert numbers[0] not in first and numbers[0] in second  # the oldest is on page two
    assert all(n in first for n in numbers[1:])
    assert "Page 2 of 2" in page(client.get("/account/?page=99"))


def test_a_customer_without_orders_sees_an_empty_state():
    html = page(as_("other").get("/account/"))
    assert "No orders yet" in html
    assert "Browse the shop" in html


def test_the_order_page_shows_items_amounts_in_the_orders_currency_and_the_payment_method():
    product = make_product(name="Sakura Paint", currency="jpy", price_cents=1999)
    order = make_order(email=OWNER, product=product, quantity=2)
    add_item(order, product=make_product(name="Brush Pack", currency="jpy", price_cents=500))
    tell(order, "checkout.session.completed", session_obj(order))
    tell(order, "charge.refunded", charge_obj(order))
    html = page(as_("owner").get(f"/account/orders/{order.number}/"))
    assert "Sakura Paint" in html and "Brush Pack" in html
    assert "¥1,999" in html and "¥3,998" in html and "¥4,498" in html
    assert "Paid with Visa •••• 4242" in html


def test_the_history_reads_as_words():
    order = order_in("failed", email=OWNER)
    tell(order, "checkout.session.completed", session_obj(order))
    refund = {**refund_obj(order, "re_part", 1200), "metadata": {"reason": "requested_by_customer"}}
    tell(order, "refund.created", refund)
    tell(order, "charge.dispute.created", dispute_obj(order, "dp_1"))
    html = page(as_("owner").get(f"/account/orders/{order.number}/"))
    history = html[html.index("<h2>History</h2>") :]
    for words in (
        "Order placed",
        "Payment declined: insufficient funds",
        "Payment received",
        "Refunded $12.00: requested by customer",
        "Payment disputed with your bank: fraudulent",
    ):
        assert words in history
    assert (
        history.index("Order placed")
        < history.index("insufficient funds")
        < history.index("Payment received")
    )


def test_active_keys_have_a_copy_button_and_other_licenses_a_sentence():
    order = order_in("completed", email=OWNER, quantity=3)
    active, suspended, revoked = License.objects.filter(order=order).order_by("id")
    License.objects.filter(pk=suspended.pk).update(status="suspended", reason="dispute")
    License.objects.filter(pk=revoked.pk).update(status="revoked", reason="refund")
    waiting = order_in(
        "completed", email=OWNER, product=make_product(license_kind=LicenseKind.POOL)
    )
    client = as_("owner")
    html = page(client.get(f"/account/orders/{order.number}/"))
    assert f'<code class="key" id="key-1">{active.key}</code>' in html
    assert 'data-copy="key-1" hidden>Copy</button>' in html  # shown by account.js
    assert suspended.key not in html and revoked.key not in html
    assert "Suspended while the payment is disputed with your bank" in html
    assert "Revoked: the order was refunded." in html
    assert "Email me my keys again" in html
    html = page(client.get(f"/account/orders/{waiting.number}/"))
    assert "Your key is on its way: it is not in stock yet" in html
    assert "Email me my keys again" not in html


def test_a_pending_order_polls_its_live_fragment_until_it_leaves_pending():
    order = order_in("pending", email=OWNER)
    client = as_("owner")
    full = client.get(f"/account/orders/{order.number}/")
    assert 'hx-trigger="every 3s"' in page(full)
    assert '<noscript><meta http-equiv="refresh" content="10"></noscript>' in page(full)
    assert "This page updates by itself." in page(full)
    assert "HX-Request" in full["Vary"]

    fragment = page(client.get(f"/account/orders/{order.number}/", headers={"HX-Request": "true"}))
    assert fragment.lstrip().startswith('<div id="order"')
    assert "<html" not in fragment and 'hx-trigger="every 3s"' in fragment

    tell(order, "checkout.session.completed", session_obj(order))
    fragment = page(client.get(f"/account/orders/{order.number}/", headers={"HX-Request": "true"}))
    assert '<span class="status completed">Completed</span>' in fragment
    assert "hx-trigger" not in fragment  # the swap removes the poll
    after = page(client.get(f"/account/orders/{order.number}/"))
    assert "hx-trigger" not in after and "refresh" not in after


def test_account_pages_carry_no_inline_script_or_style():
    order = order_in("pending", email=OWNER)
    client = as_("owner")
    for path in ("/account/", f"/account/orders/{order.number}/", "/account/login/"):
        html = page(client.get(path))
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert " style=" not in html and "<style" not in html and " on" + "click=" not in html, path
    assert '<script src="/static/django_htmx/htmx-2.min.js"' in page(
        client.get(f"/account/orders/{order.number}/")
    )


def test_the_receipt_page_offers_all_my_orders_through_the_sign_in_link():
    order = order_in("failed", email=OWNER)
    html = page(Client().get(f"/orders/{order.public_id}/"))
    assert '<form method="post" action="/account/login/" class="inline">' in html
    assert f'name="next" value="/account/orders/{order.number}/"' in html
    assert "See all my orders" in html and "you can pay again from there" in html
    html = page(as_("owner").get(f"/orders/{order.public_id}/"))
    assert f'href="/account/orders/{order.number}/">See this order in your account' in html


def test_the_navigation_offers_sign_in_or_my_orders_and_sign_out():
    assert '<a href="/account/login/">Sign in</a>' in page(Client().get("/"))
    html = page(as_("owner").get("/"))
    assert '<a href="/account/">My orders</a>' in html
    assert 'action="/account/logout/"' in html and "Sign out" in html
