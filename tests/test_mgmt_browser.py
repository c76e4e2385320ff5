"""Staff's /mgmt in a real browser (tests/browser.py): sign in with the admin's password login,
filter and search the orders, refund half then the rest in TEST MODE, see the order refunded with
its license revoked and its Discord deliveries, export the CSV and read it back, and watch a new
order appear at the top of the list without a reload. The pages are saved at desktop and phone
widths under docs/screenshots/mgmt-*.png for the README."""

import csv
import re

import pytest

from notifications.models import Destination
from orders.checkout import start_checkout
from orders.gateways.offline import OfflineGateway
from orders.models import Order
from tests.account_support import order_in
from tests.browser import DESKTOP, WAIT_MS, shoot_both, skip_without_a_browser
from tests.factories import make_order, make_product
from tests.mgmt_support import staff_member

skip_without_a_browser()
from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def page(browser, live_server, settings):
    settings.SITE_URL = live_server.url
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()


def shop() -> Order:
    """A few orders in each state; the one staff will refund: two licenses of $49."""
    Destination.objects.create(name="#sales", webhook_id="1", token="t")
    studio = make_product(name="Pixel Studio Pro", price_cents=4900, license_prefix="PSP")
    order_in("failed", email="bob@example.com", product=studio)
    order_in("pending", email="carol@example.com")
    order_in("completed", email="dan@example.com")
    order_in("disputed", email="erin@example.com", product=studio)
    # Paid through the TEST MODE gateway, so that it holds the charge a refund needs.
    order = make_order(email="ada@example.com", product=studio, quantity=2)
    start_checkout(order)
    order.refresh_from_db()
    OfflineGateway().pay(order.stripe_session_id)
    order.refresh_from_db()
    return order


def sign_in(page) -> None:
    staff_member("staff@example.com")
    page.goto("/mgmt/orders/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/mgmt/orders/$"))
    page.locator("#id_username").fill("staff@example.com")
    page.locator("#id_password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Orders", exact=True)).to_be_visible()


def refund(page, amount: str, reason: str) -> None:
    page.get_by_role("link", name="Refund…").click()
    expect(page.get_by_role("heading", name=re.compile("Refund order"))).to_be_visible()
    page.get_by_label("Amount").fill(amount)
    page.get_by_label("Reason").fill(reason)
    page.get_by_role("button", name="Refund", exact=True).click()
    # The exact amount and its currency are shown before any money moves.
    expect(page.locator("#review")).to_contain_text("to the customer?")
    page.get_by_role("button", name=re.compile(r"^Refund \$")).click()


def test_staff_find_an_order_refund_it_in_two_steps_and_export_the_list(page, tmp_path):
    order = shop()
    sign_in(page)
    page.get_by_role("link", name=re.compile(r"^Completed")).click()
    rows = page.locator("#order-rows tbody tr")
    expect(rows).to_have_count(2)
    page.get_by_label("Search").fill("ada@example.com")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("$98.00")
    shoot_both(page, "mgmt-orders")

    page.get_by_role("link", name=order.number).click()
    expect(page.get_by_role("heading", name=f"Order {order.number}")).to_be_visible()
    expect(page.locator("#order h1 .status")).to_have_text("Completed")
    shoot_both(page, "mgmt-order")

    refund(page, "49", "one seat returned")
    expect(page.get_by_text(f"Refunded $49.00 on order {order.number}.")).to_be_visible()
    expect(page.locator("#order h1 .status")).to_have_text("Completed")
    refund(page, "", "customer left")  # empty: the rest
    expect(page.get_by_text(f"Refunded $49.00 on order {order.number}.")).to_be_visible()
    expect(page.locator("#order h1 .status")).to_have_text("Refunded")
    expect(page.locator(".license-state")).to_have_text(["revoked", "revoked"])
    expect(page.locator(".notification").filter(has_text="order.refunded")).to_have_count(2)
    expect(page.locator(".deliveries").first).to_contain_text("#sales")
    expect(page.get_by_role("link", name="Refund…")).to_have_count(0)
    shoot_both(page, "mgmt-order-refunded")

    page.get_by_role("link", name="Orders", exact=True).first.click()
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    path = tmp_path / "orders.csv"
    download.value.save_as(path)
    with path.open(newline="") as file:
        exported = list(csv.DictReader(file))
    assert len(exported) == Order.objects.count() == 5
    mine = next(row for row in exported if row["number"] == "#" + order.number)
    assert (mine["status"], mine["total_cents"], mine["licenses"]) == (
        "refunded",
        "9800",
        "revoked;revoked",
    )

    # Live: a new order shows at the top without a reload.
    newest = make_order(email="new@example.com")
    # The list polls every 5 s: wait for up to three polls, on however busy a machine.
    row = page.locator("#order-rows tbody tr").first
    expect(row).to_contain_text(newest.number, timeout=15_000)


def test_staff_search_as_they_type_filter_choose_their_zone_and_download_the_csv(page, tmp_path):
    """Issue 22: part of a product's name, an amount with a decimal comma, the product filter;
    the member's own time zone, named on the page and in the CSV; an unknown zone refused."""
    order = shop()
    sign_in(page)
    rows = page.locator("#order-rows tbody tr")
    page.get_by_label("Search").fill("pixel")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(3)
    page.get_by_label("Search").fill("98,00")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(order.number)
    page.get_by_label("Search").fill("")
    page.get_by_label("Product").select_option(label="Pixel Studio Pro")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(3)
    shoot_both(page, "mgmt-orders-filtered")

    page.get_by_role("link", name="UTC").click()
    expect(page.get_by_role("heading", name="Your settings")).to_be_visible()
    page.get_by_label("Time zone").fill("Mars/Olympus")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("is not a time zone this server knows")
    page.get_by_label("Time zone").fill("asia/tokyo")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Times on /mgmt are now shown in Asia/Tokyo.")).to_be_visible()
    shoot_both(page, "mgmt-settings")

    page.get_by_role("link", name="Orders", exact=True).first.click()
    expect(page.locator("#order-rows thead")).to_contain_text("Placed (Asia/Tokyo)")
    expect(page.locator("nav a.zone")).to_have_text("Asia/Tokyo")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    assert re.fullmatch(r"orders-\d{4}-\d{2}-\d{2}\.csv", download.value.suggested_filename)
    path = tmp_path / "orders.csv"
    download.value.save_as(path)
    with path.open(newline="") as file:
        exported = list(csv.DictReader(file))
    mine = next(row for row in exported if row["number"] == "#" + order.number)
    assert (mine["total"], mine["currency"], mine["time_zone"]) == ("98.00", "USD", "Asia/Tokyo")


def test_the_other_staff_pages_read_well_at_both_widths_and_meet_the_csp(page):
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    order = shop()
    sign_in(page)
    for url, heading, name in [
        ("/mgmt/", "Overview", "mgmt-overview"),
        ("/mgmt/notifications/", "Discord notifications", "mgmt-notifications"),
        ("/mgmt/events/", "Stripe events", "mgmt-events"),
        ("/mgmt/licenses/", "License pools", "mgmt-licenses"),
    ]:
        page.goto(url)
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        shoot_both(page, name)
    page.goto(f"/mgmt/orders/{order.number}/")  # htmx and the copy script, polling
    page.wait_for_timeout(6_000)
    page.goto(f"/mgmt/orders/{order.number}/refund/")
    expect(page.get_by_label("Amount")).to_be_visible()
    assert violations == []


def test_a_keyboard_alone_walks_the_orders_list_to_an_order_and_a_poll_keeps_its_focus(page):
    """Issue 22: a skip link; the list and an order reached with the keyboard only; the live
    refresh morphs the page in place, so the focused button keeps its focus, and the status is
    in a live region that screen readers announce."""
    order = shop()
    sign_in(page)

    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()

    search = page.get_by_label("Search")
    while not search.evaluate("e => e === document.activeElement"):
        page.keyboard.press("Tab")
    page.keyboard.type("ada@example.com")
    page.keyboard.press("Enter")
    link = page.get_by_role("link", name=order.number)
    expect(link).to_have_count(1)
    while not link.evaluate("e => e === document.activeElement"):
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=f"Order {order.number}")).to_be_visible()

    show_key = page.get_by_role("button", name="Show key").first
    show_key.focus()
    OfflineGateway().open_dispute(order.stripe_payment_intent_id)  # the page learns by polling
    status = page.locator("#order h1 .status")
    expect(status).to_have_text("Disputed", timeout=15_000)
    expect(page.locator("#order h1")).to_have_attribute("aria-live", "polite")
    expect(page.get_by_role("button", name="Show key").first).to_be_focused()
