"""A payment completes only the order it was made for (issue 19): a Checkout Session the shop did
not create for the order, or one that paid another currency or less than was asked, never
completes it, on every path that fulfils (the webhook, the success page, the replay command).
The session is kept once, shown on /mgmt, and staff are told in Discord."""

import io
import re

import pytest
from django.core.management import call_command

from notifications.models import Notification
from orders.models import Order, PaymentMismatch, StripeEvent
from testkit.signing import signed_post
from testkit.stripe_objects import (
    dispute_obj,
    intent_failed_obj,
    make_event,
    refund_obj,
    session_obj,
)
from tests.factories import make_order, make_product

pytestmark = pytest.mark.django_db

MISMATCH = "order.payment_mismatch"


def buy(client, *, price_cents: int = 4900, currency: str = "usd") -> Order:
    product = make_product(price_cents=price_cents, currency=currency)
    assert (
        client.post(f"/checkout/{product.slug}/", {"email": "ada@example.com"}).status_code == 303
    )
    return Order.objects.get()


def told(order: Order) -> list[str]:
    return list(
        Notification.objects.filter(order=order, event=MISMATCH).values_list("event", flat=True)
    )


def assert_left_pending_and_staff_told(order: Order, *, session_id: str) -> PaymentMismatch:
    order.refresh_from_db()
    assert (order.status, order.paid_at, order.stripe_payment_intent_id) == ("pending", None, "")
    assert not order.licenses.exists()
    mismatch = PaymentMismatch.objects.get(order=order)
    assert mismatch.stripe_session_id == session_id
    assert told(order) == [MISMATCH]
    return mismatch


# The three ways a session may fail to be the order's: made elsewhere, another currency, too little.


def foreign(order: Order) -> dict:
    """A Payment Link's session naming the order in `client_reference_id` (anyone can set it)."""
    return session_obj(
        order, id="cs_test_payment_link", amount_total=1, amount_subtotal=1, currency="jpy",
        metadata={},
    )  # fmt: skip


def wrong_currency(order: Order) -> dict:
    return session_obj(order, currency="jpy")


def too_little(order: Order) -> dict:
    return session_obj(order, amount_total=100, amount_subtotal=100)


CASES = {
    "a session the shop did not create": (foreign, "was not created by the shop for this order"),
    "another currency": (wrong_currency, "Paid in JPY; the order asked for $25.00."),
    "less than asked": (too_little, "the order asked for $25.00"),
}


@pytest.mark.parametrize("case", CASES)
def test_the_webhook_never_completes_an_order_with_a_session_not_made_for_it(client, case):
    build, words = CASES[case]
    order = make_order()
    session = build(order)
    event = make_event("checkout.session.completed", session)

    assert signed_post(client, event).status_code == 200
    assert signed_post(client, event).status_code == 200  # Stripe delivers it again

    stored = StripeEvent.objects.get(id=event["id"])
    assert (stored.outcome, stored.order) == ("payment_mismatch", order)
    assert words in stored.detail
    mismatch = assert_left_pending_and_staff_told(order, session_id=session["id"])
    assert words in mismatch.problem and mismatch.source == event["id"]


def test_a_payment_link_session_paid_in_yen_never_completes_a_dollar_order(client, fake_stripe):
    """Found on a running server: a ¥1 Payment Link naming a pending $49 order completed it."""
    order = buy(client)
    link = fake_stripe.payment_link_session(
        client_reference_id=str(order.public_id), amount=1, currency="jpy"
    )
    fake_stripe.pay(link["id"])
    paid = fake_stripe.events[-1]

    assert signed_post(client, paid).status_code == 200  # the webhook
    page = client.get(f"/checkout/success/?session_id={link['id']}")  # the success page
    assert page.status_code == 409
    assert "cannot complete the order" in page.content.decode()

    assert_left_pending_and_staff_told(order, session_id=link["id"])  # told once, not twice


@pytest.mark.parametrize("case", ["another currency", "less than asked"])
def test_the_success_page_never_completes_an_order_with_a_session_that_paid_the_wrong_amount(
    client, fake_stripe, case
):
    order = buy(client)
    session = fake_stripe.sessions[order.stripe_session_id]
    if case == "another currency":
        session["currency"] = "jpy"
    else:
        session["amount_total"] = session["amount_subtotal"] = 49
    fake_stripe.pay(order.stripe_session_id)

    page = client.get(f"/checkout/success/?session_id={order.stripe_session_id}")

    assert page.status_code == 409
    assert_left_pending_and_staff_told(order, session_id=order.stripe_session_id)


def test_the_replay_command_never_completes_an_order_with_a_foreign_session(client, fake_stripe):
    order = buy(client)
    link = fake_stripe.payment_link_session(
        client_reference_id=str(order.public_id),
        amount=4900,
        currency="usd",
        metadata={"order_id": str(order.public_id), "attempt": "1"},
    )
    fake_stripe.pay(link["id"])

    call_command(
        "stripe_replay_events", "--since", "1d", stdout=io.StringIO(), stderr=io.StringIO()
    )

    stored = StripeEvent.objects.get(type="checkout.session.completed")
    assert stored.outcome == "payment_mismatch"
    assert_left_pending_and_staff_told(order, session_id=link["id"])


def test_the_shops_own_session_still_completes_the_order_on_every_path(client, fake_stripe):
    order = buy(client)
    fake_stripe.pay(order.stripe_session_id)
    assert client.get(f"/checkout/success/?session_id={order.stripe_session_id}").status_code == 303
    order.refresh_from_db()
    assert order.status == "completed"
    assert not PaymentMismatch.objects.exists()


def test_a_retried_orders_earlier_session_may_still_pay_it(client):
    """Money taken always wins: the first attempt's session was the shop's, for this order."""
    order = make_order()
    first = session_obj(order)
    order.attempt = 2
    order.save()
    signed_post(client, make_event("checkout.session.completed", first))
    order.refresh_from_db()
    assert order.status == "completed"


def test_a_discount_stripe_reports_and_a_tax_it_adds_are_not_a_mismatch(client):
    discounted, taxed = make_order(), make_order()
    discount = {"amount_discount": 500, "amount_shipping": 0, "amount_tax": 0}
    tax = {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 200}
    signed_post(client, make_event("checkout.session.completed", session_obj(
        discounted, amount_total=2000, total_details=discount
    )))  # fmt: skip
    signed_post(client, make_event("checkout.session.completed", session_obj(
        taxed, amount_total=2700, total_details=tax
    )))  # fmt: skip
    for order, total in ((discounted, 2000), (taxed, 2700)):
        order.refresh_from_db()
        assert (order.status, order.amount_total_cents) == ("completed", total)


def test_a_discount_larger_than_stripe_reports_is_a_mismatch(client):
    order = make_order()
    discount = {"amount_discount": 100, "amount_shipping": 0, "amount_tax": 0}
    session = session_obj(order, amount_total=1000, total_details=discount)
    signed_post(client, make_event("checkout.session.completed", session))
    assert_left_pending_and_staff_told(order, session_id=session["id"])


def test_an_adaptive_pricing_session_is_checked_and_recorded_in_the_shops_currency(client):
    """Sessions created before API 2025-03-31 with Adaptive Pricing carry the buyer's currency at
    the top and the shop's in `currency_conversion` (Stripe's own fixture has one)."""
    order = make_order()
    conversion = {
        "amount_subtotal": 2500, "amount_total": 2500, "fx_rate": "0.924", "source_currency": "usd"
    }  # fmt: skip
    session = session_obj(
        order, currency="eur", amount_total=2310, amount_subtotal=2310,
        currency_conversion=conversion,
    )  # fmt: skip
    signed_post(client, make_event("checkout.session.completed", session))
    order.refresh_from_db()
    assert (order.status, order.amount_total_cents, order.currency) == ("completed", 2500, "usd")


def test_a_foreign_payment_intent_naming_the_order_never_pays_it_through_a_refund_or_dispute(
    client,
):
    """Another integration's PaymentIntent may carry the order's id in its metadata: its decline
    must not teach the order its id, or that PaymentIntent's refund or dispute would mark the
    order paid and issue its licenses."""
    order = make_order()
    signed_post(client, make_event("payment_intent.payment_failed", intent_failed_obj(order)))
    signed_post(client, make_event("refund.created", refund_obj(order, "re_foreign", 1)))
    signed_post(client, make_event("charge.dispute.created", dispute_obj(order, "dp_foreign")))
    order.refresh_from_db()
    assert (order.status, order.paid_at, order.stripe_payment_intent_id) == ("failed", None, "")
    assert set(StripeEvent.objects.exclude(type="payment_intent.payment_failed").values_list(
        "outcome", flat=True
    )) == {"unknown_order"}  # fmt: skip
    assert not order.licenses.exists()


def test_a_foreign_session_expiring_does_not_fail_the_order(client):
    order = make_order()
    expired = session_obj(order, id="cs_test_elsewhere", status="expired", payment_status="unpaid")
    signed_post(client, make_event("checkout.session.expired", expired))
    order.refresh_from_db()
    assert order.status == "pending"
    assert StripeEvent.objects.get().outcome == "payment_mismatch"
    assert not PaymentMismatch.objects.exists()  # no money moved: nothing for staff to do
    assert told(order) == []


def test_staff_see_the_session_on_the_orders_page(client, staff):
    order = make_order()
    signed_post(client, make_event("checkout.session.completed", foreign(order)))
    client.force_login(staff)
    page = client.get(f"/mgmt/orders/{order.number}/").content.decode()
    assert "Payments not for this order" in page
    assert "cs_test_payment_link" in page
    assert "was not created by the shop for this order" in page
    embed = Notification.objects.get(order=order, event=MISMATCH).embed
    fields = {f["name"]: re.sub(r"\\(.)", r"\1", f["value"]) for f in embed["fields"]}  # as shown
    assert fields["Paid"] == "¥1 (paid)"
    assert "Stripe Dashboard" in fields["Action"]
