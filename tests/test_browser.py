"""A shopper's path through the offline TEST MODE gateway, in a real browser (tests/browser.py):
Playwright drives Debian's `chromium` against pytest-django's live server. Screenshots are for a
person to look at; nothing asserts on them."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from orders.models import Order
from orders.offline_events import deliver_due_events
from tests.browser import WAIT_MS, shoot, skip_without_a_browser
from tests.factories import make_product

skip_without_a_browser()
from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def page(browser, live_server, settings):
    # The offline gateway builds the TEST MODE checkout link from SITE_URL.
    settings.SITE_URL = live_server.url
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()


def buy_now(page, product, *, email: str = "ada@example.com", quantity: int = 1) -> None:
    page.goto("/")
    card = page.locator("section.card").filter(has_text=product.name)
    card.get_by_label("Email").fill(email)
    card.get_by_label("Quantity").fill(str(quantity))
    card.get_by_role("button", name="Buy Now").click()
    expect(page).to_have_url(re.compile(r"/test-gateway/checkout/cs_test_\w+/$"))
    expect(page.get_by_text("TEST MODE", exact=False).first).to_be_visible()


def press(page, label: str) -> None:
    page.get_by_role("button", name=label, exact=True).click()


def order_url(email: str) -> re.Pattern:
    order = Order.objects.get(email=email)
    return re.compile(rf"/orders/{order.public_id}/$")


def deliver_delayed_events(settings) -> int:
    """What the `deliver_test_events` worker does once the delayed bank debit is due."""
    later = timezone.now() + timedelta(seconds=settings.TEST_GATEWAY_DELAY + 1)
    with time_machine.travel(later, tick=False):
        return deliver_due_events()


def test_a_new_visitor_buys_a_license_and_sees_the_completed_order(page):
    product = make_product(name="Photo Studio Pro", price_cents=4900, description="One seat.")
    page.goto("/")
    expect(page.get_by_role("heading", name="Photo Studio Pro")).to_be_visible()
    expect(page.locator("section.card .price")).to_have_text("$49.00")
    shoot(page, "catalog")

    buy_now(page, product, quantity=2)
    expect(page.get_by_role("heading", name=re.compile("Pay for order"))).to_be_visible()
    expect(page.get_by_text("$98.00")).to_be_visible()
    shoot(page, "test_checkout")

    press(page, "Pay with card 4242")
    expect(page).to_have_url(order_url("ada@example.com"))
    expect(page.locator("h1 .status")).to_have_text("Completed")
    expect(page.locator("tfoot")).to_contain_text("$98.00")
    expect(page.get_by_text("Thank you")).to_be_visible()
    shoot(page, "order_completed")


def test_a_declined_card_keeps_the_buyer_on_the_checkout_and_a_second_try_pays(page):
    product = make_product(price_cents=1500)
    buy_now(page, product, email="grace@example.com")
    checkout_url = page.url

    press(page, "Card declined")
    expect(page.locator("p.error")).to_contain_text("Your card was declined")
    expect(page).to_have_url(checkout_url)
    shoot(page, "test_checkout_declined")

    press(page, "Pay with card 4242")
    expect(page).to_have_url(order_url("grace@example.com"))
    expect(page.locator("h1 .status")).to_have_text("Completed")
    expect(page.locator("tfoot")).to_contain_text("$15.00")


@pytest.mark.parametrize(
    ("action", "final", "message"),
    [
        ("Bank debit that succeeds later", "Completed", "Thank you"),
        ("Bank debit that fails later", "Failed", "The delayed payment failed."),
    ],
)
def test_a_delayed_bank_debit_shows_pending_and_the_page_updates_by_itself(
    page, settings, action, final, message
):
    buy_now(page, make_product(), email="linus@example.com")
    press(page, action)
    expect(page).to_have_url(order_url("linus@example.com"))
    status = page.locator("h1 .status")
    expect(status).to_have_text("Pending")
    expect(page.get_by_text("This page updates by itself")).to_be_visible()
    expect(page.locator('meta[http-equiv="refresh"]')).to_have_attribute("content", "3")
    shoot(page, "order_pending")

    assert deliver_delayed_events(settings) == 1

    # No reload here: the page's own refresh has to pick the outcome up.
    expect(status).to_have_text(final, timeout=WAIT_MS)
    expect(page.locator("h1 + p")).to_contain_text(message)
    expect(page.locator('meta[http-equiv="refresh"]')).to_have_count(0)
    shoot(page, f"order_{final.lower()}_after_bank_debit")
