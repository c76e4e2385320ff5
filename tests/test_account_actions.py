"""What a customer may do to an order: pay a failed one again, have its keys emailed again."""

import pytest
from django.core.cache import cache

from licenses.models import KeyEmail
from orders.gateways import GatewayError
from orders.gateways.offline import OfflineGateway
from orders.models import OfflineObject
from tests.account_support import order_in, sign_in

pytestmark = pytest.mark.django_db
EMAIL = "ada@example.com"


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()


@pytest.fixture
def customer(client):
    sign_in(client, EMAIL)
    return client


def flashes(client, order) -> str:
    return client.get(f"/account/orders/{order.number}/").content.decode()


def test_pay_again_opens_a_new_checkout_for_the_same_failed_order(customer):
    order = order_in("failed", email=EMAIL)
    old_session = order.stripe_session_id
    response = customer.post(f"/account/orders/{order.number}/pay-again/")
    order.refresh_from_db()
    assert response.status_code == 303
    assert response["Location"].endswith(f"/test-gateway/checkout/{order.stripe_session_id}/")
    assert order.stripe_session_id != old_session
    assert (order.status, order.attempt) == ("pending", 2)
    moved = order.transitions.last()
    assert (moved.from_status, moved.to_status) == ("failed", "pending")
    assert moved.source == f"customer:{EMAIL}"
    assert OfflineGateway().retrieve_session(old_session)["status"] == "expired"
    assert "You started a new payment" in flashes(customer, order)


@pytest.mark.parametrize("status", ["pending", "completed", "refunded", "disputed"])
def test_pay_again_is_refused_for_an_order_that_has_not_failed(customer, status):
    order = order_in(status, email=EMAIL)
    session = order.stripe_session_id
    response = customer.post(f"/account/orders/{order.number}/pay-again/")
    assert response.status_code == 303
    assert response["Location"] == f"/account/orders/{order.number}/"
    order.refresh_from_db()
    assert (order.status, order.attempt, order.stripe_session_id) == (status, 1, session)
    assert f"This order is {status}: there is nothing to pay again." in flashes(customer, order)
    assert "Pay again</button>" not in flashes(customer, order)


def test_only_a_failed_order_shows_the_pay_again_button(customer):
    order = order_in("failed", email=EMAIL)
    html = flashes(customer, order)
    assert "Payment declined: insufficient funds. You were not charged." in html
    assert f'action="/account/orders/{order.number}/pay-again/"' in html


def test_pay_again_is_refused_while_the_last_checkout_is_being_paid(customer):
    order = order_in("failed", email=EMAIL)
    gateway = OfflineGateway()
    # The buyer paid the old checkout by bank debit in another tab; its events are on their way.
    OfflineObject.objects.filter(id=order.stripe_session_id).update(
        data={**gateway.retrieve_session(order.stripe_session_id), "status": "complete"}
    )
    response = customer.post(f"/account/orders/{order.number}/pay-again/")
    order.refresh_from_db()
    assert response["Location"] == f"/account/orders/{order.number}/"
    assert (order.status, order.attempt) == ("failed", 1)
    assert "A payment for this order is already on its way" in flashes(customer, order)


def test_pay_again_explains_a_payment_service_outage(customer, monkeypatch):
    order = order_in("failed", email=EMAIL)

    def down(self, **kwargs):
        raise GatewayError("Stripe did not answer.", code="api_connection_error")

    monkeypatch.setattr(OfflineGateway, "create_session", down)
    response = customer.post(f"/account/orders/{order.number}/pay-again/")
    order.refresh_from_db()
    assert response["Location"] == f"/account/orders/{order.number}/"
    assert order.status == "failed"  # the new attempt failed to start and says so
    html = flashes(customer, order)
    assert "The payment could not start: Stripe did not answer. Please try again soon." in html
    assert "Payment could not start: Stripe did not answer" in html  # in the history too


def test_resend_keys_queues_the_keys_email_again(customer):
    order = order_in("completed", email=EMAIL)
    before = KeyEmail.objects.filter(order=order).count()
    response = customer.post(f"/account/orders/{order.number}/resend-keys/")
    assert response["Location"] == f"/account/orders/{order.number}/"
    assert KeyEmail.objects.filter(order=order).count() == before + 1
    assert f"Your keys are on their way to {EMAIL}." in flashes(customer, order)


def test_resend_keys_is_rate_limited_per_order(customer, settings):
    settings.ACCOUNT_RESEND_KEYS_RATE = 2
    order = order_in("completed", email=EMAIL)
    before = KeyEmail.objects.filter(order=order).count()
    for _ in range(3):
        customer.post(f"/account/orders/{order.number}/resend-keys/")
    assert KeyEmail.objects.filter(order=order).count() == before + 2
    assert "Your keys were sent several times already" in flashes(customer, order)


def test_resend_keys_of_an_order_without_keys_says_so(customer):
    order = order_in("pending", email=EMAIL)
    customer.post(f"/account/orders/{order.number}/resend-keys/")
    assert not KeyEmail.objects.filter(order=order).exists()
    assert "This order has no keys to send yet." in flashes(customer, order)
