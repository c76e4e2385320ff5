from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from orders import webhooks
from orders.models import OfflineEvent, Order, StripeEvent
from orders.offline_events import deliver_due_events
from tests.factories import make_product

pytestmark = pytest.mark.django_db(transaction=True)


def buy(client, product, email="ada@example.com", quantity=1):
    response = client.post(f"/checkout/{product.slug}/", {"email": email, "quantity": quantity})
    assert response.status_code == 303, response.content
    return response, Order.objects.get(email=email)


def press(client, order, action):
    return client.post(f"/test-gateway/checkout/{order.stripe_session_id}/", {"action": action})


def test_buy_now_creates_a_pending_order_and_sends_the_buyer_to_the_test_checkout(client):
    product = make_product(price_cents=4900)
    response, order = buy(client, product, quantity=2)
    assert order.status == "pending"
    assert order.subtotal_cents == 9800
    assert response["Location"].endswith(f"/test-gateway/checkout/{order.stripe_session_id}/")
    page = client.get(response["Location"])
    assert b"TEST MODE" in page.content


def test_paying_completes_the_order_through_a_signed_webhook_event(client):
    _, order = buy(client, make_product())
    response = press(client, order, "pay")
    assert response.status_code == 303
    receipt = client.get(response["Location"], follow=True)
    order.refresh_from_db()
    assert order.status == "completed"
    assert order.payment_method == "Visa •••• 4242"
    assert StripeEvent.objects.filter(type="checkout.session.completed", outcome="applied").exists()
    assert b"Thank you" in receipt.content


def test_a_declined_card_fails_the_order_and_a_second_try_completes_it(client):
    _, order = buy(client, make_product())
    page = press(client, order, "insufficient_funds")
    assert b"declined" in page.content
    order.refresh_from_db()
    assert order.status == "failed"
    assert order.failure_code == "insufficient_funds"
    press(client, order, "pay")
    order.refresh_from_db()
    assert order.status == "completed"
    assert [t.to_status for t in order.transitions.all()] == ["pending", "failed", "completed"]


@pytest.mark.parametrize(
    ("action", "final"), [("delayed_success", "completed"), ("delayed_failure", "failed")]
)
def test_a_delayed_payment_stays_pending_until_the_worker_delivers_its_outcome(
    client, settings, action, final
):
    _, order = buy(client, make_product())
    press(client, order, action)
    call_command("deliver_test_events", "--once")
    order.refresh_from_db()
    assert (order.status, order.async_payment_pending) == ("pending", True)
    later = timezone.now() + timedelta(seconds=settings.TEST_GATEWAY_DELAY + 1)
    with time_machine.travel(later, tick=False):
        call_command("deliver_test_events", "--once")
    order.refresh_from_db()
    assert order.status == final
    assert not OfflineEvent.objects.filter(delivered_at=None).exists()


def test_letting_the_session_expire_fails_the_order_and_shows_the_cancel_page(client):
    _, order = buy(client, make_product())
    response = press(client, order, "expire")
    assert "/checkout/cancel/" in response["Location"]
    page = client.get(response["Location"]).content.decode()
    assert "<h1>Checkout expired</h1>" in page
    assert "not charged" in page
    order.refresh_from_db()
    assert (order.status, order.failure_code) == ("failed", "expired")


def test_an_event_whose_processing_fails_stays_queued_for_the_worker(client, monkeypatch):
    _, order = buy(client, make_product())

    def broken(*args):
        raise RuntimeError("database hiccup")

    with monkeypatch.context() as patch:
        patch.setitem(webhooks.HANDLERS, "checkout.session.completed", broken)
        assert press(client, order, "pay").status_code == 303
    order.refresh_from_db()
    assert order.status == "pending"
    assert deliver_due_events() == 1
    order.refresh_from_db()
    assert order.status == "completed"
