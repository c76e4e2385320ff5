import pytest
from django.contrib.admin.utils import quote
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import User
from audit.models import Action
from licenses.models import KeyEmail, PoolKey
from notifications.models import Delivery, Destination, Notification
from orders import commands as order_commands
from orders.checkout import start_checkout
from orders.gateways.offline import OfflineGateway
from orders.models import LicenseKind, StripeEvent
from tests.factories import make_order, make_product

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff_client(client):
    client.force_login(User.objects.create_superuser("boss@example.com", "pw"))
    return client


def act(client, action, order):
    return client.post(
        "/admin/orders/order/",
        {"action": action, "_selected_action": [order.pk]},
        follow=True,
    )


def paid_order():
    order = make_order()
    start_checkout(order)
    order.refresh_from_db()
    OfflineGateway().pay(order.stripe_session_id)
    order.refresh_from_db()
    return order


def test_staff_complete_a_pending_order_from_the_admin(staff_client):
    order = make_order()
    response = act(staff_client, "orders_complete", order)
    order.refresh_from_db()
    assert order.status == "completed"
    assert f"{order.number}: completed" in response.content.decode()
    assert Action.objects.get().command == "orders.complete"  # audited, as on /mgmt


def test_the_admin_moves_no_money_refunds_are_made_on_mgmt(staff_client):
    order = paid_order()
    page = staff_client.get("/admin/orders/order/").content.decode()
    assert 'value="refund"' not in page
    act(staff_client, "refund", order)
    order.refresh_from_db()
    assert (order.status, order.refunds.count()) == ("completed", 0)


def test_retrying_is_done_on_mgmt_where_the_payment_link_is_shown(staff_client):
    page = staff_client.get("/admin/orders/order/").content.decode()
    assert "orders_retry" not in page


def test_a_test_mode_dispute_can_be_opened_and_won_from_the_admin(staff_client):
    order = paid_order()
    act(staff_client, "orders_open_test_dispute", order)
    order.refresh_from_db()
    assert order.status == "disputed"
    assert order.licenses.get().status == "suspended"
    act(staff_client, "orders_close_test_dispute_won", order)
    order.refresh_from_db()
    assert order.status == "completed"
    assert order.licenses.get().status == "active"


def test_a_lost_dispute_from_the_admin_refunds_the_order(staff_client):
    order = paid_order()
    act(staff_client, "orders_open_test_dispute", order)
    act(staff_client, "orders_close_test_dispute_lost", order)
    order.refresh_from_db()
    assert order.status == "refunded"
    assert order.transitions.last().reason == "chargeback lost"


def test_disputes_are_not_simulated_when_stripe_is_configured(staff_client, settings):
    order = paid_order()
    settings.STRIPE_SECRET_KEY = "sk_test_real"
    response = act(staff_client, "orders_open_test_dispute", order)
    assert "test mode only" in response.content.decode()
    assert order.disputes.count() == 0


def test_keys_are_imported_from_a_file_in_the_admin(staff_client):
    product = make_product(license_kind=LicenseKind.POOL)
    upload = SimpleUploadedFile("keys.csv", b"key\nAAA-1\nBBB-2\nAAA-1\n", content_type="text/csv")
    response = staff_client.post(
        "/admin/licenses/poolkey/import/", {"product": product.pk, "file": upload}, follow=True
    )
    assert "Imported 2 key(s), skipped 1" in response.content.decode()
    assert PoolKey.objects.filter(product=product).count() == 2


def test_the_admin_pages_open(staff_client):
    order = paid_order()
    for url in [
        "/admin/",
        "/admin/orders/order/",
        f"/admin/orders/order/{order.pk}/change/",
        "/admin/orders/stripeevent/",
        "/admin/licenses/license/",
        "/admin/licenses/poolkey/",
        "/admin/licenses/poolkey/import/",
        "/admin/notifications/destination/",
        "/admin/notifications/destination/add/",
        "/admin/notifications/notification/",
        "/admin/notifications/delivery/",
    ]:
        assert staff_client.get(url).status_code == 200, url


def test_the_admin_shows_money_in_the_orders_currency_and_times_as_dates(staff_client):
    order = make_order(product=make_product(price_cents=1999, currency="jpy"))
    order_commands.complete.run(order, by=User.objects.get(email="boss@example.com"))
    listing = staff_client.get("/admin/orders/order/").content.decode()
    page = staff_client.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    assert "¥1,999" in listing and "¥1,999" in page
    assert "19.99" not in listing + page
    assert "TOTAL CENTS" not in listing.upper()

    event = StripeEvent.objects.create(
        id="evt_1", type="charge.refunded", created=1796122657, payload={"b": 1, "a": {"c": 2}},
        outcome="applied",
    )  # fmt: skip
    page = staff_client.get(f"/admin/orders/stripeevent/{event.pk}/change/").content.decode()
    assert "1796122657" not in page
    assert "2026" in page  # 1796122657 is in November 2026
    assert "{\n  &quot;a&quot;: {\n    &quot;c&quot;: 2\n  },".replace("\\n", "\n") in page


@pytest.mark.parametrize(
    "url",
    [
        "/admin/orders/order/{order}/change/",
        "/admin/orders/stripeevent/{event}/change/",
        "/admin/licenses/license/{license}/change/",
        "/admin/notifications/notification/{notification}/change/",
        "/admin/notifications/delivery/{delivery}/change/",
    ],
)
def test_read_only_admin_pages_have_no_save_button(staff_client, fake_discord, url):
    fake_discord.destination("orders")
    order = paid_order()
    ids = {
        "order": order.pk,
        # As the admin writes it into its links: "_24" in a raw "evt_test_24…" reads back as "$".
        "event": quote(StripeEvent.objects.filter(order=order).first().pk),
        "license": order.licenses.get().pk,
        "notification": order.notifications.first().pk,
        "delivery": Delivery.objects.first().pk,
    }
    page = staff_client.get(url.format(**ids))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()


def test_license_keys_are_not_shown_in_the_license_admin(staff_client):
    order = paid_order()
    license = order.licenses.get()
    page = staff_client.get(f"/admin/licenses/license/{license.pk}/change/").content.decode()
    listing = staff_client.get("/admin/licenses/license/").content.decode()
    assert license.key not in page
    assert license.key not in listing
    assert license.key[-4:] in listing


def test_a_destination_is_added_from_a_pasted_url_and_its_token_never_shown(staff_client):
    token = "s3cr3t" * 12
    url = f"https://discord.com/api/webhooks/123456789012345678/{token}"
    response = staff_client.post(
        "/admin/notifications/destination/add/",
        {"name": "sales", "webhook_url": url, "events": ["order.completed"], "enabled": "on"},
        follow=True,
    )
    assert response.status_code == 200
    destination = Destination.objects.get(name="sales")
    assert (destination.webhook_id, destination.token) == ("123456789012345678", token)
    for page in [
        "/admin/notifications/destination/",
        f"/admin/notifications/destination/{destination.pk}/change/",
    ]:
        assert token not in staff_client.get(page).content.decode()


def test_a_destination_with_another_host_is_refused(staff_client):
    response = staff_client.post(
        "/admin/notifications/destination/add/",
        {
            "name": "evil",
            "webhook_url": "https://evil.example.com/api/webhooks/123456789012345678/" + "t" * 68,
            "events": ["order.completed"],
        },
    )
    assert "Not a Discord webhook URL" in response.content.decode()


def test_a_username_discord_would_refuse_is_refused(staff_client):
    response = staff_client.post(
        "/admin/notifications/destination/add/",
        {
            "name": "x",
            "webhook_url": "https://discord.com/api/webhooks/123456789012345678/" + "t" * 68,
            "events": ["order.completed"],
            "username": "Discord Bot",
        },
    )
    assert "Discord refuses usernames" in response.content.decode()


def test_a_notification_is_previewed_as_an_embed_with_customer_text_escaped(staff_client):
    order = make_order(email="x@example.com")
    notification = Notification.objects.create(
        event="order.completed",
        order=order,
        embed={"title": "<script>alert(1)</script>", "color": 0x2ECC71, "fields": []},
    )
    page = staff_client.get(f"/admin/notifications/notification/{notification.pk}/change/")
    html = page.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" not in html
    assert "embed-c-2ecc71" in html  # the colour, by class (CSP: no inline styles)


def test_a_dead_message_can_be_sent_again_from_the_admin(staff_client):
    destination = Destination.objects.create(name="d", webhook_id="1" * 18, token="t" * 68)
    notification = Notification.objects.create(event="order.completed", embed={"title": "x"})
    delivery = Delivery.objects.create(
        notification=notification,
        destination=destination,
        status="dead",
        attempts=7,
        use_fallback=True,
    )
    staff_client.post(
        "/admin/notifications/delivery/",
        {"action": "notifications_resend", "_selected_action": [delivery.pk]},
        follow=True,
    )
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.use_fallback) == ("pending", 0, False)


def test_staff_can_switch_off_a_destination_discord_refused(staff_client):
    destination = Destination.objects.create(
        name="gone", webhook_id="1" * 18, token="t" * 68, enabled=False, disabled_reason="404"
    )
    staff_client.post(
        f"/admin/notifications/destination/{destination.pk}/change/",
        {"name": "gone", "webhook_url": "", "events": ["order.completed"]},
    )
    destination.refresh_from_db()
    assert (destination.enabled, destination.disabled_reason) == (False, "")
    paid_order()
    assert not Delivery.objects.filter(destination=destination).exists()


def test_staff_suspend_reinstate_and_resend_keys_from_the_license_admin(staff_client):
    order = paid_order()
    license = order.licenses.get()

    def license_action(action):
        return staff_client.post(
            "/admin/licenses/license/",
            {"action": action, "_selected_action": [license.pk]},
            follow=True,
        )

    license_action("licenses_suspend")
    license.refresh_from_db()
    assert (license.status, license.reason, license.changed_by.email) == (
        "suspended",
        "staff",
        "boss@example.com",
    )
    page = license_action("licenses_suspend").content.decode()
    assert "This license is suspended already." in page
    license_action("licenses_reinstate")
    license.refresh_from_db()
    assert license.status == "active"
    license_action("resend")
    assert KeyEmail.objects.filter(order=order, requested_by__email="boss@example.com").exists()
    assert license.key not in page


def test_staff_set_a_products_activation_limit_and_license_days_in_the_admin(staff_client):
    product = make_product(slug="editor", name="Editor")
    listing = staff_client.get("/admin/orders/product/").content.decode()
    assert "max activations" in listing.lower() and "license days" in listing.lower()
    page = staff_client.get(f"/admin/orders/product/{product.pk}/change/").content.decode()
    assert 'name="max_activations"' in page and 'name="license_days"' in page
    form = {
        "slug": "editor", "name": "Editor", "description": "", "price_cents": 2500,
        "currency": "usd", "active": "on", "license_kind": "generated", "license_prefix": "",
        "stock_alert_threshold": 5, "max_activations": 3, "license_days": 0,
    }  # fmt: skip
    refused = staff_client.post(f"/admin/orders/product/{product.pk}/change/", form)
    assert refused.status_code == 200  # the form again: 0 days is no license at all
    form["license_days"] = ""
    staff_client.post(f"/admin/orders/product/{product.pk}/change/", form)
    product.refresh_from_db()
    assert (product.max_activations, product.license_days) == (3, None)


def test_the_license_admin_shows_devices_with_their_labels_escaped(staff_client):
    from licenses.activations import activate

    order = paid_order()
    license = order.licenses.get()
    activate(license, fingerprint="fp-secret-1", label="<script>alert(1)</script>")
    page = staff_client.get(f"/admin/licenses/license/{license.pk}/change/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
    assert "fp-secret-1" not in page
    assert license.activations.get().fingerprint_hash not in page
