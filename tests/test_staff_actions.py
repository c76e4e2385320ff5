import pytest

from audit.commands import Refused
from orders import amounts
from orders import commands as order_commands
from orders.checkout import start_checkout
from orders.gateways import GatewayError
from orders.gateways.offline import OfflineGateway
from orders.models import OfflineEvent, OfflineObject, Order
from tests.factories import make_order

pytestmark = pytest.mark.django_db(transaction=True)


def paid_order(quantity: int = 1) -> Order:
    order = make_order(quantity=quantity)
    start_checkout(order)
    order.refresh_from_db()
    OfflineGateway().pay(order.stripe_session_id)  # emits the event; delivered on commit
    order.refresh_from_db()
    assert order.status == "completed"
    return order


def test_staff_complete_a_pending_order_paid_offline(staff):
    order = make_order()
    order_commands.complete.run(order, by=staff, note="bank transfer 2026-11-27")
    order.refresh_from_db()
    assert order.status == "completed"
    assert order.paid_source == "staff:boss@example.com"
    assert order.transitions.last().source == "staff:boss@example.com"


def test_completing_an_order_that_is_not_pending_is_refused(staff):
    order = paid_order()
    with pytest.raises(Refused, match="Only a pending or failed order"):
        order_commands.complete.run(order, by=staff)


def test_a_full_refund_records_the_refund_at_once_and_the_webhook_adds_nothing(staff):
    order = paid_order()
    refund = order_commands.refund.run(order, by=staff, reason="customer asked")
    order.refresh_from_db()
    assert order.status == "refunded"
    assert (refund.amount_cents, refund.sequence, refund.reason) == (2500, 1, "customer asked")
    assert refund.requested_by == staff
    # The gateway's refund.created and charge.refunded were delivered as duplicate facts.
    assert order.refunds.count() == 1
    assert not OfflineEvent.objects.filter(delivered_at=None).exists()
    assert list(order.transitions.values_list("to_status", flat=True)) == [
        "pending",
        "completed",
        "refunded",
    ]


def test_a_partial_refund_keeps_the_order_completed_and_a_second_refunds_the_rest(staff):
    order = paid_order(quantity=2)
    order_commands.refund.run(order, by=staff, amount_cents=1000, seen_returned=0)
    order.refresh_from_db()
    assert (order.status, amounts.refunded(order)) == ("completed", 1000)
    second = order_commands.refund.run(order, by=staff, seen_returned=1000)
    order.refresh_from_db()
    assert (order.status, amounts.refunded(order), second.amount_cents) == ("refunded", 5000, 4000)
    assert second.sequence == 2


def test_a_double_click_on_refund_refunds_once(staff):
    order = paid_order(quantity=2)
    order_commands.refund.run(order, by=staff, amount_cents=1000, seen_returned=0)
    with pytest.raises(Refused, match="refunded meanwhile"):
        order_commands.refund.run(order, by=staff, amount_cents=1000, seen_returned=0)
    order.refresh_from_db()
    assert amounts.refunded(order) == 1000


def test_a_refund_larger_than_what_is_left_is_refused(staff):
    order = paid_order()
    with pytest.raises(Refused, match=r"between \$0\.01 and \$25\.00"):
        order_commands.refund.run(order, by=staff, amount_cents=2501)
    assert order.refunds.count() == 0


def test_a_refund_of_an_order_paid_outside_stripe_is_refused(staff):
    order = make_order()
    order_commands.complete.run(order, by=staff)
    with pytest.raises(Refused, match="outside Stripe"):
        order_commands.refund.run(order, by=staff)


def test_retrying_a_failed_order_opens_a_new_session_and_ignores_the_old_attempt(staff):
    order = make_order()
    start_checkout(order)
    order.refresh_from_db()
    old_session = order.stripe_session_id
    OfflineGateway().decline(old_session)
    order.refresh_from_db()
    assert order.status == "failed"

    url = order_commands.retry.run(order, by=staff)
    order.refresh_from_db()
    assert (order.status, order.attempt, order.failure_code) == ("pending", 2, "")
    assert order.stripe_session_id != old_session
    assert url.endswith(f"/test-gateway/checkout/{order.stripe_session_id}/")
    # The old session was expired before the new attempt began: its tab can take no payment.
    assert order.stripe_events.filter(type="checkout.session.expired").exists()

    OfflineGateway().pay(order.stripe_session_id)
    order.refresh_from_db()
    assert order.status == "completed"
    assert list(order.transitions.values_list("to_status", flat=True)) == [
        "pending",
        "failed",
        "pending",
        "completed",
    ]


def test_a_retry_is_refused_when_the_customer_completed_the_old_session_meanwhile(staff):
    order = make_order()
    start_checkout(order)
    order.refresh_from_db()
    gateway = OfflineGateway()
    gateway.decline(order.stripe_session_id)
    # The buyer pays by bank debit in the old tab; its events have not arrived yet.
    OfflineObject.objects.filter(id=order.stripe_session_id).update(
        data={**gateway.retrieve_session(order.stripe_session_id), "status": "complete"}
    )
    with pytest.raises(Refused, match="completed the last checkout"):
        order_commands.retry.run(order, by=staff)
    order.refresh_from_db()
    assert (order.status, order.attempt) == ("failed", 1)


def test_retrying_an_order_that_has_not_failed_is_refused(staff):
    with pytest.raises(Refused, match="Only a failed order"):
        order_commands.retry.run(make_order(), by=staff)


def test_completing_by_hand_closes_the_checkout_so_the_buyer_cannot_pay_twice(staff):
    order = make_order()
    start_checkout(order)
    order.refresh_from_db()
    order_commands.complete.run(order, by=staff, note="bank transfer")
    session = OfflineGateway().retrieve_session(order.stripe_session_id)
    assert session["status"] == "expired"
    order.refresh_from_db()
    assert order.status == "completed"


def test_completing_by_hand_is_refused_while_a_payment_is_in_flight(staff):
    order = make_order()
    start_checkout(order)
    order.refresh_from_db()
    OfflineGateway().pay(order.stripe_session_id, method="sepa_debit")
    with pytest.raises(Refused, match="in flight"):
        order_commands.complete.run(order, by=staff)
    order.refresh_from_db()
    assert (order.status, order.async_payment_pending) == ("pending", True)


def test_completing_by_hand_is_refused_when_the_buyer_pays_as_the_checkout_is_closed(
    staff, monkeypatch
):
    order = make_order()
    start_checkout(order)
    order.refresh_from_db()
    gateway = OfflineGateway()

    def buyer_pays_first(session_id):
        gateway.pay(session_id, method="sepa_debit")  # the session completes just before
        raise GatewayError("This checkout session is no longer open.", code="session_not_open")

    monkeypatch.setattr(OfflineGateway, "expire_session", lambda self, sid: buyer_pays_first(sid))
    with pytest.raises(Refused, match="completed the last checkout"):
        order_commands.complete.run(order, by=staff)
    order.refresh_from_db()
    assert not order.paid_source.startswith("staff")


def test_a_failed_order_paid_by_bank_transfer_can_be_completed_by_hand(staff):
    order = make_order()
    start_checkout(order)
    order.refresh_from_db()
    OfflineGateway().decline(order.stripe_session_id)
    order_commands.complete.run(order, by=staff, note="bank transfer")
    order.refresh_from_db()
    assert order.status == "completed"
    assert [t.to_status for t in order.transitions.all()][-2:] == ["failed", "completed"]
