"""Orders that used to get stuck or say something false (issue 22): a failed bank debit can be
paid again, completing by hand fails nothing first, an abandoned checkout expires within the hour
and is told apart from a refused payment, and an unpaid order shows nothing as charged, opens no test dispute, and a refunded one offers
no "Resend keys"."""

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.utils import timezone

from audit.models import Action
from licenses import commands as license_commands
from licenses.models import KeyEmail
from notifications.models import Notification
from orders import commands as order_commands
from orders.checkout import open_checkout, start_checkout
from orders.gateways.offline import OfflineGateway
from orders.models import Order
from orders.offline_events import deliver_due_events
from tests.account_support import OWNER, client_as, order_in
from tests.factories import make_order, make_product
from tests.mgmt_support import staff_member

pytestmark = pytest.mark.django_db


def pending(email: str = OWNER) -> Order:
    order = make_order(email=email, product=make_product(price_cents=2900))
    start_checkout(order)
    return Order.objects.get(pk=order.pk)


def debit_failed(settings) -> Order:
    settings.TEST_GATEWAY_DELAY = 0
    order = pending()
    OfflineGateway().pay(order.stripe_session_id, method="sepa_debit", outcome="failed")
    deliver_due_events()
    order = Order.objects.get(pk=order.pk)
    assert (order.status, order.failure_code) == ("failed", "async_payment_failed")
    return order


def test_the_customer_pays_again_after_a_failed_bank_debit(settings):
    order = debit_failed(settings)
    first = order.stripe_session_id
    response = client_as("owner").post(f"/account/orders/{order.number}/pay-again/")
    order.refresh_from_db()
    assert response.status_code == 303 and "/test-gateway/checkout/" in response["Location"]
    assert (order.status, order.attempt) == ("pending", 2) and order.stripe_session_id != first


def test_staff_retry_or_complete_an_order_whose_bank_debit_failed(settings):
    boss = staff_member()
    retried = debit_failed(settings)
    assert order_commands.retry.run(retried, by=boss)
    completed = debit_failed(settings)
    order_commands.complete.run(completed, by=boss, note="paid by wire")
    assert Order.objects.get(pk=completed.pk).status == "completed"


def test_completing_by_hand_fails_nothing_first_and_keeps_the_note_for_staff():
    order = pending()
    boss = staff_member()
    order_commands.complete.run(order, by=boss, note="wire ref 42, see bank")
    order.refresh_from_db()
    moves = list(order.transitions.values_list("from_status", "to_status"))
    assert moves == [("", "pending"), ("pending", "completed")]
    assert not Notification.objects.filter(order=order, event="payment.failed").exists()
    assert order.payment_method == "paid outside Stripe"
    page = client_as("owner").get(f"/account/orders/{order.number}/").content.decode()
    assert "wire ref 42" not in page  # the staff note is not the customer's to read
    assert Action.objects.get(command="orders.complete").detail == "wire ref 42, see bank"


def test_an_open_checkout_offers_to_continue_on_the_receipt_and_the_account(client):
    order = pending()
    session = open_checkout(order)
    assert session is not None and session.expires_at > timezone.now()
    for page in (
        client.get(f"/orders/{order.public_id}/").content.decode(),
        client_as("owner").get(f"/account/orders/{order.number}/").content.decode(),
    ):
        assert "Continue to payment" in page and session.url in page


def test_an_abandoned_checkout_expires_after_its_time_and_is_told_apart(settings, client):
    settings.CHECKOUT_EXPIRES_MINUTES = 30
    left = pending()
    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        deliver_due_events()  # the worker expires what is overdue, as Stripe does
    declined = pending(email="bob@example.com")
    OfflineGateway().decline(declined.stripe_session_id)
    deliver_due_events()

    left.refresh_from_db()
    assert (left.status, left.failure_code) == ("failed", "expired")
    assert open_checkout(left) is None
    embed = Notification.objects.get(order=left, event="payment.failed").embed
    assert embed["title"] == f"Checkout abandoned: order {left.number}"

    staff = client
    staff.force_login(staff_member())
    listed = staff.get("/mgmt/orders/?status=failed").content.decode()
    assert "checkout abandoned" in listed
    abandoned = staff.get("/mgmt/orders/?status=failed&failure=abandoned").content.decode()
    refused = staff.get("/mgmt/orders/?status=failed&failure=refused").content.decode()
    assert left.number in abandoned and declined.number not in abandoned
    assert declined.number in refused and left.number not in refused
    assert "(1 abandoned checkout)" in staff.get("/mgmt/").content.decode()
    receipt = client.get(f"/orders/{left.public_id}/").content.decode()
    assert "The checkout closed before it was paid" in receipt


def test_an_unpaid_order_shows_nothing_as_charged(client):
    order = pending()
    client.force_login(staff_member())
    page = client.get(f"/mgmt/orders/{order.number}/").content.decode()
    assert "Charged" not in page and "To pay" in page


def test_a_checkout_time_stripe_would_refuse_stops_the_shop_at_start(settings):
    settings.CHECKOUT_EXPIRES_MINUTES = 10
    with pytest.raises(SystemCheckError, match="CHECKOUT_EXPIRES_MINUTES is 10"):
        call_command("check")


# Item 5: what an unpaid or refunded order must not offer.


def test_a_test_dispute_cannot_be_opened_or_won_on_an_unpaid_order(client):
    finance = staff_member(role="Finance")
    client.force_login(finance)
    for order in (pending(), debit_failed_order()):
        page = client.get(f"/mgmt/orders/{order.number}/").content.decode()
        assert "Open a test dispute" not in page and "Close the test dispute" not in page
        assert order_commands.open_test_dispute.refusal(order, by=finance)
        response = client.post(f"/mgmt/orders/{order.number}/test-dispute/open/")
        assert response.status_code in (302, 303, 400, 403, 409)
        assert not order.disputes.exists()
        assert order_commands.close_test_dispute_won.refusal(order, by=finance)
        assert Order.objects.get(pk=order.pk).status == order.status


def debit_failed_order() -> Order:
    order = pending(email="bob@example.com")
    OfflineGateway().decline(order.stripe_session_id, code="card_declined")
    return Order.objects.get(pk=order.pk)


def test_resend_keys_is_not_offered_on_a_refunded_order_and_sends_no_revoked_key(client):
    order = order_in("refunded", email=OWNER)
    support = staff_member(role="Support")
    client.force_login(support)
    page = client.get(f"/mgmt/orders/{order.number}/").content.decode()
    assert "Resend keys" not in page
    before = KeyEmail.objects.filter(order=order, kind="keys").count()
    client.post(f"/mgmt/orders/{order.number}/resend-keys/")
    assert license_commands.resend_order_keys.refusal(order, by=support)
    assert KeyEmail.objects.filter(order=order, kind="keys").count() == before
    owner = client_as("owner").get(f"/account/orders/{order.number}/").content.decode()
    assert "Email me my keys again" not in owner
