"""TEST MODE plays Stripe Radar too (issue 21): from an order's /mgmt page staff raise an early
fraud warning, open a review and approve it, and the shop handles the offline gateway's signed
events as it handles Stripe's, so a shop owner can see what Radar does before going live."""

import pytest

from audit.models import Action
from licenses.models import License
from notifications.models import Notification
from orders import commands
from orders.gateways.offline import OfflineGateway
from orders.models import Order
from tests.factories import make_order
from tests.mgmt_support import staff_member
from tests.test_mgmt_actions import paid

pytestmark = pytest.mark.django_db(transaction=True)


def page_of(client, order: Order) -> str:
    return client.get(f"/mgmt/orders/{order.number}/").content.decode()


def press(client, order: Order, path: str):
    url = f"/mgmt/orders/{order.number}/{path}/"
    assert "TEST MODE" in client.get(url).content.decode()
    return client.post(url)


def test_a_test_fraud_warning_is_handled_as_stripes_would_be(client):
    client.force_login(staff_member(role="Finance"))
    order = paid()
    assert f'href="/mgmt/orders/{order.number}/test-radar/warning/"' in page_of(client, order)

    assert press(client, order, "test-radar/warning").status_code == 303

    [warning] = order.fraud_warnings.all()
    assert warning.actionable and warning.fraud_type == "made_with_stolen_card"
    assert Notification.objects.filter(order=order, event="order.fraud_warning").count() == 1
    assert "Stripe Radar" in page_of(client, order)
    assert Action.objects.filter(command="orders.raise_test_fraud_warning").count() == 1


def test_a_test_review_holds_the_keys_until_it_is_approved(client):
    finance = staff_member(role="Finance")
    client.force_login(finance)
    order = paid(quantity=2)

    press(client, order, "test-radar/review/open")
    holds = set(License.objects.filter(order=order).values_list("status", "reason"))
    assert holds == {("suspended", "review")}
    assert commands.open_test_review.refusal(order, by=finance) == (
        "A review of this payment is open already."
    )
    page = page_of(client, order)
    assert f'href="/mgmt/orders/{order.number}/test-radar/review/approve/"' in page

    press(client, order, "test-radar/review/approve")
    assert set(License.objects.filter(order=order).values_list("status", flat=True)) == {"active"}
    assert not order.reviews.filter(open=True).exists()
    assert commands.approve_test_review.refusal(order, by=finance) == (
        "No review of this payment is open."
    )


def test_radar_is_simulated_in_test_mode_only_and_on_paid_orders(client, settings):
    finance = staff_member(role="Finance")
    client.force_login(finance)
    order = paid()
    unpaid = make_order()
    assert commands.raise_test_fraud_warning.refusal(unpaid, by=finance).startswith(
        "A test fraud warning is raised on a completed order"
    )
    settings.STRIPE_SECRET_KEY = "sk_test_not_used"
    assert "test-radar" not in page_of(client, order)
    for command in (commands.raise_test_fraud_warning, commands.open_test_review):
        assert command.refusal(order, by=finance) == "Radar is simulated in test mode only."
    assert not order.fraud_warnings.exists()


def test_support_may_not_simulate_radar(client):
    client.force_login(staff_member(role="Support"))
    order = paid()
    assert "test-radar" not in page_of(client, order)
    response = client.post(f"/mgmt/orders/{order.number}/test-radar/warning/")
    assert response.status_code == 403
    assert not order.fraud_warnings.exists()


def test_the_offline_gateway_says_when_there_is_no_review_to_close():
    order = paid()
    from orders.gateways import GatewayError

    with pytest.raises(GatewayError, match="No such review"):
        OfflineGateway().close_review("prv_test_nothing", closed_reason="approved")
    assert order.reviews.count() == 0
