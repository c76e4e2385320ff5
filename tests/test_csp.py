"""Content-Security-Policy (django-csp) on every page: scripts and styles only from the shop's own
files, no framing, forms only to the shop and Stripe Checkout. The browser half is in
tests/test_browser_csp.py."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import User
from notifications.events import Event
from notifications.models import Notification
from tests.factories import make_order, make_product

pytestmark = pytest.mark.django_db


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in header.split(";") if part.strip())
    }


def assert_strict(response) -> None:
    directives = policy(response)
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]  # no 'unsafe-inline', no other host
    assert directives["style-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "'self'" in directives["form-action"]


def staff_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("boss@example.com", "pw"))
    return client


def test_shop_pages_carry_the_policy(client):
    product = make_product()
    order = make_order(product=product)
    assert_strict(client.get("/"))
    assert_strict(client.get(f"/orders/{order.public_id}/"))
    checkout = client.post(f"/checkout/{product.slug}/", {"email": "ada@example.com"})
    assert_strict(checkout)
    assert_strict(client.get(checkout["Location"]))  # the TEST MODE checkout page


def test_the_admin_carries_the_policy(client):
    assert_strict(client.get("/admin/login/"))
    assert_strict(staff_client().get("/admin/orders/order/"))


def test_error_pages_carry_the_policy(client):
    missing = client.get("/no-such-page/")
    assert missing.status_code == 404
    assert_strict(missing)
    bad = client.get("/checkout/success/")  # no session_id: the 400 page
    assert bad.status_code == 400
    assert_strict(bad)


def test_forms_may_lead_to_stripe_checkout_and_the_site_url():
    client = Client()
    form_action = policy(client.get("/"))["form-action"]
    # Buy Now posts to the shop, which redirects to Checkout: browsers hold redirects after a
    # form post to form-action too.
    assert "https://checkout.stripe.com" in form_action
    assert re.sub(r"/+$", "", settings.SITE_URL) in form_action


def test_the_embed_preview_in_the_admin_uses_classes_not_inline_styles():
    notification = Notification.objects.create(
        event=Event.ORDER_COMPLETED, embed={"title": "Order 1", "color": 0x2ECC71}
    )
    page = staff_client().get(f"/admin/notifications/notification/{notification.pk}/change/")
    html = page.content.decode()
    assert 'class="embed embed-c-2ecc71"' in html
    assert "css/embed.css" in html
    assert "style=" not in html


def test_no_template_has_inline_styles_or_scripts():
    inline = re.compile(r"""\sstyle=|<style|<script(?![^>]*\ssrc=)|\son[a-z]+=""", re.I)
    found = [
        str(path.relative_to(settings.BASE_DIR))
        for path in Path(settings.BASE_DIR).glob("**/templates/**/*.html")
        if ".venv" not in path.parts and inline.search(path.read_text())
    ]
    assert found == []
