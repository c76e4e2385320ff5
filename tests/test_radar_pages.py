"""What staff and the buyer are shown of Stripe Radar (issue 21): /mgmt's order page, its
"Fraud warnings" page and the overview's "Needs action"; /account says a hold in words, never
the word fraud. Events from Stripe's example objects, through the real handler."""

import html
import re

import pytest

from testkit.stripe_objects import fraud_warning_obj, review_obj, session_obj
from tests.account_support import OWNER, client_as, order_in, tell
from tests.factories import make_order
from tests.mgmt_support import staff_member

pytestmark = pytest.mark.django_db


def text_of(response) -> str:
    assert response.status_code == 200
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))
    return html.unescape(words)


@pytest.fixture
def staff_client(client):
    client.force_login(staff_member(role="Support"))
    return client


def test_the_mgmt_order_page_tells_the_warning_and_what_to_do(staff_client):
    order = order_in("completed", email=OWNER)
    tell(order, "radar.early_fraud_warning.created", fraud_warning_obj(order))

    page = text_of(staff_client.get(f"/mgmt/orders/{order.number}/"))

    assert "Stripe Radar" in page
    assert f"Early fraud warning issfr_{order.number}: made with stolen card, actionable." in page
    assert "Stripe advises refunding it in full (Stripe's reason: fraudulent)" in page


def test_the_mgmt_order_page_tells_an_open_review_then_its_close(staff_client):
    order = order_in("completed", email=OWNER)
    tell(order, "review.opened", review_obj(order))
    page = text_of(staff_client.get(f"/mgmt/orders/{order.number}/"))
    assert "opened by rule: open, the keys are held until Stripe approves the payment." in page
    assert "Payment under review" in page  # the license's reason

    tell(order, "review.closed", review_obj(order, closed_reason="approved"))
    page = text_of(staff_client.get(f"/mgmt/orders/{order.number}/"))
    assert "opened by rule: closed, approved." in page


def test_the_fraud_warnings_page_lists_warnings_and_open_reviews(staff_client):
    warned = order_in("completed", email=OWNER)
    tell(warned, "radar.early_fraud_warning.created", fraud_warning_obj(warned))
    reviewed = order_in("completed", email="bob@example.com")
    tell(reviewed, "review.opened", review_obj(reviewed))
    quiet = order_in("completed", email="cy@example.com")

    everything = text_of(staff_client.get("/mgmt/fraud-warnings/"))
    actionable = text_of(staff_client.get("/mgmt/fraud-warnings/?show=actionable"))
    reviews = text_of(staff_client.get("/mgmt/fraud-warnings/?show=reviews"))

    assert warned.number in everything and reviewed.number in everything
    assert quiet.number not in everything
    assert warned.number in actionable and reviewed.number not in actionable
    assert reviewed.number in reviews and warned.number not in reviews
    assert "open: keys held" in reviews


def test_the_fraud_warnings_page_is_for_staff_with_a_role_only(client):
    client.force_login(staff_member("x@example.com", role=None))
    assert client.get("/mgmt/fraud-warnings/").status_code == 403


def test_the_overview_needs_action_lists_actionable_warnings_and_open_reviews(staff_client):
    warned = order_in("completed", email=OWNER)
    tell(warned, "radar.early_fraud_warning.created", fraud_warning_obj(warned))
    reviewed = order_in("completed", email="bob@example.com")
    tell(reviewed, "review.opened", review_obj(reviewed))
    spent = order_in("completed", email="cy@example.com")
    tell(spent, "radar.early_fraud_warning.created", fraud_warning_obj(spent, actionable=False))

    page = text_of(staff_client.get("/mgmt/"))

    needs = page.split("Needs action")[1].split("Pool stock")[0]
    assert f"{warned.number} Early fraud warning (made with stolen card)" in needs
    assert f"{reviewed.number} Radar review open: keys held" in needs
    assert spent.number not in needs


def test_the_buyer_sees_a_hold_in_words_and_never_the_word_fraud(client):
    order = order_in("completed", email=OWNER)
    tell(order, "radar.early_fraud_warning.created", fraud_warning_obj(order))
    tell(order, "review.opened", review_obj(order))
    buyer = client_as("owner")

    page = text_of(buyer.get(f"/account/orders/{order.number}/"))

    assert "routine check with our payment provider" in page
    assert "keys are on hold" in page
    assert "On hold while your payment goes through a routine check" in page
    assert "fraud" not in page.lower()
    assert "radar" not in page.lower()

    tell(order, "review.closed", review_obj(order, closed_reason="approved"))
    page = text_of(buyer.get(f"/account/orders/{order.number}/"))
    assert "on hold" not in page.lower()


def test_discount_and_tax_show_on_mgmt_and_account(staff_client):
    order = make_order(email=OWNER)
    price = order.subtotal_cents
    details = {"amount_discount": 500, "amount_shipping": 0, "amount_tax": 210}
    tell(
        order,
        "checkout.session.completed",
        session_obj(order, amount_total=price - 500 + 210, total_details=details),
    )

    staff_page = text_of(staff_client.get(f"/mgmt/orders/{order.number}/"))
    buyer_page = text_of(client_as("owner").get(f"/account/orders/{order.number}/"))

    assert "Discount (promotion code) −$5.00" in staff_page
    assert "Tax $2.10" in staff_page
    assert "Discount −$5.00" in buyer_page
    assert "Tax $2.10" in buyer_page


def test_the_fraud_warning_embed_is_previewed_on_mgmt_notifications(staff_client):
    from notifications.events import DEFAULT_EVENTS
    from notifications.models import Destination

    Destination.objects.create(
        name="ops", webhook_id="1" * 18, token="x" * 68, events=list(DEFAULT_EVENTS)
    )
    order = order_in("completed", email=OWNER)
    tell(order, "radar.early_fraud_warning.created", fraud_warning_obj(order))
    tell(order, "review.opened", review_obj(order))

    page = text_of(staff_client.get("/mgmt/notifications/"))

    assert f"Early fraud warning: order {order.number}" in page
    assert f"Payment in Radar review: order {order.number}" in page
    assert "made with stolen card" in page
