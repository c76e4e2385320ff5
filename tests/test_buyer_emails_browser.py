"""The buyer's emails and receipt in a real browser (tests/browser.py): a failed bank debit's email
is read from Django's outbox and its link followed to paying again; a refund's email leads to the
order in /account, which lists the emails; the thank-you page shows the keys to the browser that
bought and to nobody else holding its link. The receipt and an email's landing page are saved at
1280 and 375 pixels under docs/screenshots/ (UPDATE_SCREENSHOTS=1)."""

import re

import pytest
from django.core import mail
from django.core.cache import cache

from licenses.emails import send_key_emails
from licenses.models import License
from orders.models import Order
from testkit.stripe_objects import refund_obj
from tests.account_support import tell
from tests.browser import DESKTOP, WAIT_MS, shoot_both, skip_without_a_browser
from tests.factories import make_product

skip_without_a_browser()
from playwright.sync_api import expect  # noqa: E402

from tests.test_browser import buy_now, deliver_delayed_events, press  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def page(browser, live_server, settings):
    settings.SITE_URL = live_server.url  # the emails' links
    cache.clear()
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()


def the_email(subject_start: str):
    """The worker sends what is due; the one email whose subject starts so."""
    mail.outbox.clear()
    send_key_emails()
    (message,) = [m for m in mail.outbox if m.subject.startswith(subject_start)]
    return message


def link_after(label: str, body: str) -> str:
    match = re.search(rf"{label}:? (https?://\S+)", body)
    assert match, f"no {label!r} link in {body!r}"
    return match.group(1)


def test_a_failed_bank_debits_email_leads_the_buyer_to_pay_again(page, settings):
    product = make_product(name="Pixel Studio Pro", price_cents=4900)
    buy_now(page, product, email="ada@example.com")
    press(page, "Bank debit that fails later")
    order = Order.objects.get(email="ada@example.com")
    assert deliver_delayed_events(settings) == 1
    order.refresh_from_db()
    assert order.status == "failed"

    email = the_email("Your bank payment")
    assert "Pay again" in email.body
    page.goto(link_after("Your order", email.body))
    expect(page.locator("h1 .status")).to_have_text("Failed")
    expect(page.get_by_text("The payment did not go through")).to_be_visible()
    shoot_both(page, "email-landing-payment-failed")

    # "See all my orders" emails a sign-in link (shown on the page in test mode), then Pay again.
    page.get_by_role("button", name="See all my orders").click()
    page.get_by_role("link", name="Open the sign-in link").click()
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/account/orders/{order.number}/$"))
    expect(page.locator("ul.emails")).to_contain_text("Bank payment failed")  # the email, listed
    page.get_by_role("button", name="Pay again").click()
    press(page, "Pay with card 4242")
    expect(page.locator("h1 .status")).to_have_text("Completed")
    order.refresh_from_db()
    assert (order.status, order.attempt) == ("completed", 2)


def test_the_receipt_shows_the_keys_to_the_buyer_alone_and_a_refund_email_leads_to_it(
    page, browser, live_server
):
    product = make_product(name="Vector Forge", price_cents=1500)
    buy_now(page, product, email="grace@example.com", quantity=2)
    press(page, "Pay with card 4242")
    order = Order.objects.get(email="grace@example.com")
    expect(page).to_have_url(re.compile(rf"/orders/{order.public_id}/$"))
    keys = list(License.objects.filter(order=order).values_list("key", flat=True))
    expect(page.locator("code.key")).to_have_text(keys)
    expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
    expect(page.locator(".receipt tfoot")).to_contain_text("$30.00")
    expect(page.get_by_text("Paid with Visa •••• 4242")).to_be_visible()
    shoot_both(page, "receipt")

    # Someone else with the link (a forwarded email): the receipt, never a key.
    other = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    stranger = other.new_page()
    stranger.goto(page.url)
    expect(stranger.get_by_role("heading", name="Receipt")).to_be_visible()
    expect(stranger.locator("code.key")).to_have_count(0)
    assert not any(key in stranger.content() for key in keys)
    other.close()

    # Refunded in full: the email names the revoked keys by their end, and leads to /account.
    order.refresh_from_db()
    ids = {"payment_intent": order.stripe_payment_intent_id, "charge": order.stripe_charge_id}
    tell(order, "refund.created", refund_obj(order, "re_1", order.total_cents, **ids))
    email = the_email("Refund of $30.00")
    assert all(f"key ending …{key[-4:]}" in email.body and key not in email.body for key in keys)
    page.goto(link_after("Your account", email.body))
    expect(page.get_by_role("heading", name="Order not found")).to_be_visible()
    page.get_by_role("link", name="sign in", exact=True).click()
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_role("button", name="Email me a sign-in link").click()
    page.get_by_role("link", name="Open the sign-in link").click()
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/account/orders/{order.number}/$"))
    expect(page.locator("h1 .status")).to_have_text("Refunded")
    emails = page.locator("ul.emails li")
    expect(emails).to_have_count(2)
    expect(emails.nth(1)).to_contain_text("Refund made")
    expect(emails.nth(1)).to_contain_text("sent")
    expect(page.locator("code.key")).to_have_count(2)  # masked, marked no longer usable
    shoot_both(page, "email-landing-refund")
