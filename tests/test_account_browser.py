"""Customers' /account in a real browser (tests/browser.py: Debian's chromium via Playwright,
against pytest-django's live server): a bank debit turns completed on the page by itself, sign-in
by link, keys with a working copy button, and "Pay again" after a declined card. The main pages
are saved at desktop and phone widths under docs/screenshots/ for the README."""

import re

import pytest
from django.core.cache import cache

from licenses.models import License
from orders.models import Order
from tests.account_support import order_in
from tests.browser import DESKTOP, WAIT_MS, shoot_both, skip_without_a_browser
from tests.factories import make_product

skip_without_a_browser()
from playwright.sync_api import expect  # noqa: E402

from tests.test_browser import buy_now, deliver_delayed_events, press  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def page(browser, live_server, settings):
    settings.SITE_URL = live_server.url  # links in emails and the test gateway's checkout
    cache.clear()  # the sign-in throttle counts in the (process-wide) local-memory cache
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()


def sign_in_by_link(page, email: str) -> None:
    """From the sign-in form (email already typed or not) to signed in, by the test-mode link."""
    field = page.get_by_label("Email")
    if field.input_value() != email:
        field.fill(email)
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    page.get_by_role("link", name="Open the sign-in link").click()
    expect(page.get_by_text(f"Sign in as {email}")).to_be_visible()
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_text(f"Signed in as {email}.")).to_be_visible()


def test_a_new_customer_watches_a_bank_debit_complete_then_finds_the_order_and_its_key(
    page, settings
):
    product = make_product(name="Pixel Studio Pro", price_cents=4900, license_prefix="PSP")
    buy_now(page, product, email="ada@example.com")
    press(page, "Bank debit that succeeds later")
    order = Order.objects.get(email="ada@example.com")
    expect(page).to_have_url(re.compile(rf"/orders/{order.public_id}/$"))

    # The receipt offers all my orders: one button that emails the sign-in link to the order's
    # address (posted, so the address is never in a URL).
    receipt = page.url
    page.goto("/account/login/")
    page.get_by_label("Email").fill("ada@example.com")
    shoot_both(page, "account-login")
    page.goto(receipt)
    page.get_by_role("button", name="See all my orders").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    assert "email" not in page.url
    shoot_both(page, "account-link-sent")
    page.get_by_role("link", name="Open the sign-in link").click()
    page.get_by_role("button", name="Sign in", exact=True).click()

    expect(page).to_have_url(re.compile(rf"/account/orders/{order.number}/$"))
    status = page.locator("h1 .status")
    expect(status).to_have_text("Pending")
    expect(page.get_by_text("Your bank payment is on its way")).to_be_visible()
    shoot_both(page, "account-order-pending")
    page.evaluate("window.stillTheSamePage = true")

    assert deliver_delayed_events(settings) == 1
    expect(status).to_have_text("Completed", timeout=WAIT_MS)  # no reload: htmx's poll
    assert page.evaluate("window.stillTheSamePage") is True
    expect(page.locator("#order[hx-trigger]")).to_have_count(0)  # and the polling stopped

    key = License.objects.get(order=order).key
    expect(page.locator("code.key")).to_have_text(key)
    expect(page.get_by_text("Payment received")).to_be_visible()
    shoot_both(page, "account-order-completed")
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == key

    # Two later orders of hers, one refunded and one declined, share the list.
    later = [
        order_in(status, email="ada@example.com", product=make_product(name=name))
        for status, name in (("refunded", "Vector Forge"), ("failed", "Sound Lab"))
    ]
    page.get_by_role("link", name="My orders", exact=True).click()
    rows = page.locator("table.orders tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(2)).to_contain_text(order.number)  # newest first
    expect(rows.nth(2)).to_contain_text("$49.00")
    expect(rows.nth(2).locator(".status")).to_have_text("Completed")
    expect(rows.nth(0).locator(".status")).to_have_text("Failed")
    expect(rows.nth(1).locator(".status")).to_have_text("Refunded")
    assert later[0].number in rows.nth(1).inner_text()
    shoot_both(page, "account-orders")


def test_a_declined_card_then_pay_again_completes_the_same_order(page):
    product = make_product(name="Vector Forge", price_cents=1500)
    buy_now(page, product, email="grace@example.com")
    press(page, "Card declined: insufficient funds")
    expect(page.locator("p.error")).to_contain_text("insufficient funds")
    order = Order.objects.get(email="grace@example.com")
    assert order.status == "failed"

    page.goto("/account/")
    expect(page).to_have_url(re.compile(r"/account/login/\?next=/account/$"))
    sign_in_by_link(page, "grace@example.com")
    expect(page).to_have_url(re.compile(r"/account/$"))
    page.get_by_role("link", name=order.number).click()

    expect(page.locator("h1 .status")).to_have_text("Failed")
    expect(
        page.get_by_text("Payment declined: insufficient funds. You were not charged.")
    ).to_be_visible()
    shoot_both(page, "account-order-failed")
    page.get_by_role("button", name="Pay again").click()

    expect(page).to_have_url(re.compile(r"/test-gateway/checkout/cs_test_\w+/$"))
    press(page, "Pay with card 4242")
    expect(page.locator("h1 .status")).to_have_text("Completed")

    page.goto(f"/account/orders/{order.number}/")
    expect(page.locator("h1 .status")).to_have_text("Completed")
    expect(page.get_by_text("You started a new payment")).to_be_visible()
    expect(page.locator("code.key")).to_have_text(License.objects.get(order=order).key)
    order.refresh_from_db()
    assert (order.status, order.attempt) == ("completed", 2)
    assert Order.objects.filter(email="grace@example.com").count() == 1


def test_a_used_link_is_a_page_that_offers_a_new_one(page):
    page.goto("/account/login/")
    page.get_by_label("Email").fill("linus@example.com")
    page.get_by_role("button", name="Email me a sign-in link").click()
    link = page.get_by_role("link", name="Open the sign-in link").get_attribute("href")
    page.goto(link)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="No orders yet")).to_be_visible()
    shoot_both(page, "account-orders-empty")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    page.goto(link)
    expect(page.get_by_role("heading", name="This link cannot sign you in")).to_be_visible()
    expect(page.get_by_text("already been used")).to_be_visible()
    expect(page.get_by_label("Email")).to_have_value("linus@example.com")
    shoot_both(page, "account-bad-link")


def test_a_customer_frees_a_device_and_sees_the_renewal_and_staff_see_the_devices(page):
    """Issue 23's pages as their users see them (and the README's screenshots of them)."""
    from datetime import timedelta

    from django.utils import timezone

    from licenses.activations import activate
    from tests.mgmt_support import staff_member

    product = make_product(name="Pixel Studio Pro", max_activations=3, license_days=365)
    order = order_in("completed", email="ada@example.com", product=product)
    license = License.objects.get(order=order)
    activate(license, fingerprint="laptop", label="Ada's laptop")
    activate(license, fingerprint="studio", label="Studio iMac")
    License.objects.filter(pk=license.pk).update(expires_at=timezone.now() + timedelta(days=20))

    page.goto("/account/login/")
    sign_in_by_link(page, "ada@example.com")
    page.goto(f"/account/orders/{order.number}/")
    expect(page.get_by_text("Devices: 2 of 3")).to_be_visible()
    expect(page.get_by_role("button", name="Renew Pixel Studio Pro")).to_be_visible()
    shoot_both(page, "account-devices")
    page.locator(".devices li").filter(has_text="Studio iMac").get_by_role(
        "button", name="Deactivate"
    ).click()
    expect(page.get_by_text("Studio iMac is deactivated.")).to_be_visible()
    expect(page.get_by_text("Devices: 1 of 3")).to_be_visible()

    staff_member("staff@example.com")
    page.context.clear_cookies()
    page.goto(f"/mgmt/orders/{order.number}/")
    page.locator("#id_username").fill("staff@example.com")
    page.locator("#id_password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("1 of 3 device")).to_be_visible()
    expect(page.get_by_role("link", name="Reset devices…")).to_be_visible()
    shoot_both(page, "mgmt-order-devices")
