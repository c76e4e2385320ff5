"""The Content-Security-Policy in a real browser: Chromium logs every violation to the console,
and a shopper's path (catalog, TEST MODE checkout, order page) and the admin log none."""

import pytest
from django.contrib.auth import get_user_model

from tests.browser import skip_without_a_browser
from tests.factories import make_product

skip_without_a_browser()
from playwright.sync_api import expect  # noqa: E402

from tests.test_browser import buy_now, order_url, page, press  # noqa: E402, F401  (page: fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def violations(page):  # noqa: F811  (the fixture imported above)
    seen: list[str] = []
    page.on(
        "console",
        lambda message: (
            seen.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return seen


def test_a_purchase_in_test_mode_meets_no_csp_violation(page, violations):  # noqa: F811
    product = make_product(name="Photo Studio Pro")
    buy_now(page, product)  # the catalog, then the TEST MODE checkout
    press(page, "Pay with card 4242")
    expect(page).to_have_url(order_url("ada@example.com"))
    expect(page.locator("h1 .status")).to_have_text("Completed")
    assert violations == []


def test_the_admin_meets_no_csp_violation(page, violations):  # noqa: F811
    get_user_model().objects.create_superuser("boss@example.com", "pw")
    page.goto("/admin/login/")
    page.get_by_label("Email").fill("boss@example.com")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    page.goto("/admin/notifications/notification/")
    expect(page.locator("#content h1")).to_be_visible()
    assert violations == []
