"""Licenses on /account and /mgmt (issue 23): customers see each license's devices and free one
themselves, see when it expires and renew it (a new order that extends the same key); staff see
devices and reset them, and the licenses that expire in the next 30 days."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from audit.models import Action
from licenses.activations import activate
from licenses.emails import queue_expiry_reminders, send_key_emails
from licenses.models import Activation, License, Renewal
from orders.checkout import start_checkout
from orders.gateways.offline import OfflineGateway
from orders.models import Order
from orders.offline_events import deliver_due_events
from tests.account_support import OWNER, client_as, order_in, sign_in
from tests.factories import make_product
from tests.mgmt_support import staff_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def product():
    return make_product(name="Photon", slug="photon", max_activations=3, license_days=365)


def paid(product, email: str = OWNER) -> License:
    order = order_in("pending", email=email, product=product)
    OfflineGateway().pay(Order.objects.get(pk=order.pk).stripe_session_id)
    deliver_due_events()
    return License.objects.get(order=order)


def page(client: Client, license: License) -> str:
    return client.get(f"/account/orders/{license.order.number}/").content.decode()


def test_the_customer_sees_each_device_and_deactivates_one(product):
    license = paid(product)
    activate(license, fingerprint="laptop-1", label="Ada's laptop")
    activate(license, fingerprint="desk-2", label="<b>Desk</b>")
    owner = client_as("owner")

    shown = page(owner, license)
    assert "Devices: 2 of 3" in shown and "Ada&#x27;s laptop" in shown
    assert "&lt;b&gt;Desk&lt;/b&gt;" in shown  # a label is text, never markup
    laptop = Activation.objects.get(label="Ada's laptop")
    response = owner.post(
        f"/account/orders/{license.order.number}/devices/{laptop.public_id}/deactivate/"
    )
    assert response.status_code == 303
    laptop.refresh_from_db()
    assert (laptop.ended, laptop.ended_by.email) == ("customer", OWNER)
    assert "Devices: 1 of 3" in page(owner, license)
    action = Action.objects.get(command="licenses.deactivate_device")
    assert (action.user.email, action.order, action.outcome) == (OWNER, license.order, "done")


def test_another_customer_cannot_deactivate_a_device_even_knowing_its_id(product):
    license = paid(product)
    device = activate(license, fingerprint="laptop-1", label="laptop").activation
    theirs = paid(product, email="bob@example.com")
    other = client_as("other")
    for number in (license.order.number, theirs.order.number):
        response = other.post(f"/account/orders/{number}/devices/{device.public_id}/deactivate/")
        assert response.status_code == 404
    assert Activation.objects.get(pk=device.pk).deactivated_at is None


def test_the_deactivation_limit_is_said_in_words_and_stops_the_button(product, settings):
    settings.LICENSE_DEACTIVATIONS_PER_30_DAYS = 1
    license = paid(product)
    first = activate(license, fingerprint="a", label="first").activation
    activate(license, fingerprint="b", label="second")
    owner = client_as("owner")
    owner.post(f"/account/orders/{license.order.number}/devices/{first.public_id}/deactivate/")
    shown = page(owner, license)
    assert "deactivated on 1 devices in the last 30 days" in shown
    assert "Deactivate</button>" not in shown


def test_staff_see_devices_and_reset_them_with_a_record(product, client):
    license = paid(product)
    activate(license, fingerprint="a", label="Ada's laptop")
    support = staff_member("help@example.com", role="Support")
    client.force_login(support)
    order_page = client.get(f"/mgmt/orders/{license.order.number}/").content.decode()
    assert "1 of 3 device" in order_page and "Ada&#x27;s laptop" in order_page
    url = f"/mgmt/orders/{license.order.number}/licenses/{license.pk}/reset-devices/"
    assert "Reset devices…" in order_page

    client.post(url)

    assert not Activation.objects.filter(deactivated_at=None).exists()
    assert Activation.objects.get().ended == "staff"
    action = Action.objects.get(command="licenses.reset_activations")
    assert (action.user, action.detail) == (support, "1 device(s) deactivated")
    assert (
        "Reset devices…" not in client.get(f"/mgmt/orders/{license.order.number}/").content.decode()
    )


def test_an_expiring_license_says_when_and_offers_renewal_and_a_far_one_does_not(product):
    license = paid(product)
    owner = client_as("owner")
    assert "expires on" in page(owner, license) and "Renew Photon" not in page(owner, license)
    with time_machine.travel(license.expires_at - timedelta(days=10)):
        assert "Renew Photon" in page(client_as("owner"), license)  # signed in again: a year on
    with time_machine.travel(license.expires_at + timedelta(days=3)):
        shown = page(client_as("owner"), license)
        assert "expired on" in shown and "Renew Photon" in shown


def test_a_license_that_never_expires_offers_no_renewal():
    license = paid(make_product(slug="forever", license_days=None))
    shown = page(client_as("owner"), license)
    assert "never expires" in shown and "Renew" not in shown


def renew(owner: Client, license: License) -> Order:
    url = f"/account/orders/{license.order.number}/licenses/{license.public_id}/renew/"
    response = owner.post(url)
    assert response.status_code == 303, response
    return Order.objects.get(is_renewal=True, pk__in=Renewal.objects.values("order"))


def pay(order: Order) -> Order:
    OfflineGateway().pay(Order.objects.get(pk=order.pk).stripe_session_id)
    deliver_due_events()
    return Order.objects.get(pk=order.pk)


def test_a_paid_renewal_extends_the_same_key_from_its_expiry(product):
    license = paid(product)
    send_key_emails()  # the first order's own email
    key, expiry = license.key, license.expires_at
    with time_machine.travel(expiry - timedelta(days=10)):
        renewal = renew(client_as("owner"), license)
        assert renewal.status == "pending" and renewal.line_items()[0].product == product
        mail.outbox.clear()
        renewal = pay(renewal)
        send_key_emails()
    license.refresh_from_db()
    assert renewal.status == "completed"
    assert (license.key, license.expires_at) == (key, expiry + timedelta(days=365))
    assert License.objects.count() == 1  # no second license: the same key lives on
    assert "Your license is renewed: the key stays the same." in mail.outbox[0].body
    assert key in mail.outbox[0].body


def test_an_expired_license_renews_from_the_payment(product):
    license = paid(product)
    later = license.expires_at + timedelta(days=40)
    with time_machine.travel(later, tick=False):
        pay(renew(client_as("owner"), license))
        license.refresh_from_db()
        assert license.expires_at == timezone.now() + timedelta(days=365)


def test_a_refunded_renewal_takes_its_extension_back(product):
    license = paid(product)
    expiry = license.expires_at
    renewal = pay(renew(client_as("owner"), license))
    OfflineGateway().create_refund(
        payment_intent=renewal.stripe_payment_intent_id,
        amount=renewal.total_cents,
        idempotency_key="refund-renewal",
        metadata={},
    )
    deliver_due_events()
    license.refresh_from_db()
    assert Order.objects.get(pk=renewal.pk).status == "refunded"
    assert (license.status, license.expires_at) == ("active", expiry)  # the first order stands


def test_a_renewal_waiting_for_payment_is_not_started_twice(product):
    license = paid(product)
    owner = client_as("owner")
    renew(owner, license)
    url = f"/account/orders/{license.order.number}/licenses/{license.public_id}/renew/"
    owner.post(url)
    assert Renewal.objects.count() == 1
    with time_machine.travel(license.expires_at - timedelta(days=1)):
        assert "A renewal of this license is waiting for its payment" in page(owner, license)


def test_nobody_renews_a_license_that_is_not_theirs(product):
    license = paid(product)
    other = Client()
    sign_in(other, "bob@example.com")
    url = f"/account/orders/{license.order.number}/licenses/{license.public_id}/renew/"
    assert other.post(url).status_code == 404
    assert not Renewal.objects.exists()


def test_staff_see_the_licenses_expiring_in_30_days(product, client):
    soon, later = paid(product), paid(product, email="bob@example.com")
    License.objects.filter(pk=soon.pk).update(expires_at=timezone.now() + timedelta(days=9))
    client.force_login(staff_member(role="Support"))
    listed = client.get("/mgmt/licenses/").content.decode()
    assert soon.order.number in listed.split('id="expiring"')[1]
    assert later.order.number not in listed.split('id="expiring"')[1]
    assert "1</strong> expires in the next 30 days" in client.get("/mgmt/").content.decode()


def test_the_expiry_reminder_offers_the_renewal(product, settings):
    license = paid(product)
    send_key_emails()
    mail.outbox.clear()
    with time_machine.travel(license.expires_at - timedelta(days=13)):
        queue_expiry_reminders()
        send_key_emails()
    [reminder] = mail.outbox
    assert f"/account/orders/{license.order.number}/" in reminder.body
    assert "renew it from your account" in reminder.body


def test_checkout_start_failure_leaves_a_renewal_payable_again(product, monkeypatch):
    from orders.gateways import GatewayError

    license = paid(product)

    def refuse(self, **kwargs):
        raise GatewayError("We could not reach the payment provider.", code="stripe_unreachable")

    monkeypatch.setattr(OfflineGateway, "create_session", refuse)
    owner = client_as("owner")
    url = f"/account/orders/{license.order.number}/licenses/{license.public_id}/renew/"
    response = owner.post(url)
    assert response.status_code == 303
    renewal = Renewal.objects.get().order
    assert Order.objects.get(pk=renewal.pk).status == "failed"
    monkeypatch.undo()
    assert start_checkout(Order.objects.get(pk=renewal.pk))  # can be paid again


def test_a_renewal_lost_to_a_chargeback_is_taken_back(product):
    license = paid(product)
    expiry = license.expires_at
    renewal = pay(renew(client_as("owner"), license))
    gateway = OfflineGateway()
    dispute = gateway.open_dispute(renewal.stripe_payment_intent_id)
    deliver_due_events()
    license.refresh_from_db()
    assert license.expires_at == expiry + timedelta(days=365)  # held while it is open
    gateway.close_dispute(dispute["id"], won=False)
    deliver_due_events()
    license.refresh_from_db()
    assert (license.status, license.expires_at) == ("active", expiry)
    assert Order.objects.get(pk=renewal.pk).status == "refunded"
