"""One ledger per order (issue 21), through the signed webhook with Stripe's own objects
(testkit/stripe_objects.py builds on fixtures3.json's `charge`, `refund` and `dispute`): what was
charged, refunded (whatever event told it), pending, held back by chargebacks, and the fees."""

import pytest

from audit.commands import Refused
from licenses.models import License
from orders import amounts
from orders import commands as order_commands
from orders.models import Refund
from testkit import stripe_objects as so
from tests.factories import make_order, make_product
from tests.mgmt_support import staff_member
from tests.test_stripe_gateway import paid_order
from tests.test_stripe_shapes import (
    ACTIVE,
    CHARGEBACK,
    REVOKED,
    deliver,
    fields_of,
    licenses,
    open_dispute,
    pay,
    told,
)

pytestmark = pytest.mark.django_db
OLD = {"api_version": so.API_WITHOUT_REFUND_EVENTS}


@pytest.fixture
def order():
    return make_order(product=make_product(name="Photon Editor", price_cents=2500))


@pytest.fixture
def staff():
    return staff_member("money@example.com", role="Finance")


def dispute_with_fee(order, status: str, *transactions: tuple[int, int]) -> dict:
    """fixtures3.json's dispute with its balance transactions: (amount, fee) each, in USD."""
    listed = [
        {"id": f"txn_{n}", "object": "balance_transaction", "amount": amount, "fee": fee,
         "currency": "usd", "reporting_category": "dispute", "type": "adjustment"}
        for n, (amount, fee) in enumerate(transactions)
    ]  # fmt: skip
    return so.dispute_obj(order, "dp_1", status, balance_transactions=listed)


def test_a_refund_told_only_by_charge_refunded_is_a_refund_with_its_embed(order):
    """API versions 2022-11-15 up to 2024-10-28 send charge.refunded alone, without refunds."""
    pay(order)
    deliver(order, "charge.refunded", so.charge_obj(order, refunded=1000), **OLD)
    deliver(order, "charge.refunded", so.charge_obj(order, refunded=1000), **OLD)  # again

    refund = Refund.objects.get()
    assert (refund.amount_cents, refund.status, refund.reported_by_charge) == (
        1000,
        "succeeded",
        True,
    )
    assert (order.status, licenses(order)) == ("completed", ACTIVE)
    assert told(order)[3:] == ["order.refunded"]
    assert (
        fields_of(order, "order.refunded")["Told by"] == "charge.refunded only (no refund object)"
    )

    deliver(order, "charge.refunded", so.charge_obj(order, refunded=2500), **OLD)

    assert sorted(Refund.objects.values_list("amount_cents", flat=True)) == [1000, 1500]
    assert (order.status, licenses(order)) == ("refunded", REVOKED)
    book = amounts.ledger(order)
    assert (book.charged, book.refunded, book.net, book.left_to_refund) == (2500, 2500, 0, 0)


def test_charge_refunded_totals_out_of_order_count_the_largest_once(order):
    pay(order)
    deliver(order, "charge.refunded", so.charge_obj(order, refunded=2500), **OLD)
    deliver(order, "charge.refunded", so.charge_obj(order, refunded=1000), **OLD)

    assert amounts.refunded(order) == 2500
    assert told(order)[3:] == ["order.refunded"]


def test_charge_refunded_on_the_pinned_version_leaves_refunds_to_their_own_events(order):
    pay(order)
    deliver(order, "refund.created", so.refund_obj(order, "re_1", 1000, "pending"))
    deliver(order, "charge.refunded", so.charge_obj(order, refunded=1000))

    book = amounts.ledger(order)
    assert (book.refunded, book.refund_pending, book.left_to_refund) == (0, 1000, 1500)
    assert Refund.objects.count() == 1


def test_a_pending_refund_that_fails_leaves_the_money_and_keys_where_they_were(order):
    pay(order)
    deliver(order, "refund.created", so.refund_obj(order, "re_1", 2500, "pending"))
    assert (amounts.ledger(order).refund_pending, order.status) == (2500, "completed")
    assert fields_of(order, "order.refund_pending")["Refund"] == "$25.00"

    failed = so.refund_obj(order, "re_1", 2500, "failed", failure_reason="expired_or_canceled_card")
    deliver(order, "refund.failed", failed)

    book = amounts.ledger(order)
    assert (book.refunded, book.refund_pending, book.net, book.left_to_refund) == (0, 0, 2500, 2500)
    assert (order.status, licenses(order)) == ("completed", ACTIVE)
    assert told(order)[3:] == ["order.refund_pending", "order.refund_failed"]
    action = fields_of(order, "order.refund_failed")["Action"]
    assert action.startswith("The customer kept the license but not the money")


def test_a_chargeback_lost_after_a_partial_refund_is_in_the_books_with_its_fee(order):
    pay(order)
    deliver(order, "refund.created", so.refund_obj(order, "re_1", 1000))
    deliver(
        order, "charge.dispute.created", dispute_with_fee(order, "needs_response", (-2500, 1500))
    )

    assert amounts.ledger(order).left_to_refund == 0  # the chargeback holds the money
    assert fields_of(order, "order.disputed")["Dispute fee"] == "$15.00"

    deliver(order, "charge.dispute.closed", dispute_with_fee(order, "lost", (-2500, 1500)))
    # An older copy, before the balance transactions were listed, changes nothing.
    deliver(order, "charge.dispute.updated", so.dispute_obj(order, "dp_1", "needs_response"))

    book = amounts.ledger(order)
    assert (book.charged, book.refunded, book.chargebacks, book.dispute_fees) == (
        2500,
        1000,
        2500,
        1500,
    )
    assert (book.net, book.left_to_refund) == (-2500, 0)
    assert (order.status, licenses(order)) == ("refunded", CHARGEBACK)


def test_a_won_chargeback_gives_the_money_back_to_the_books(order):
    pay(order)
    deliver(
        order, "charge.dispute.created", dispute_with_fee(order, "needs_response", (-2500, 1500))
    )
    won = dispute_with_fee(order, "won", (-2500, 1500), (2500, -1500))
    deliver(order, "charge.dispute.closed", won)

    book = amounts.ledger(order)
    assert (book.chargebacks, book.dispute_fees, book.net, book.left_to_refund) == (
        0,
        0,
        2500,
        2500,
    )


def test_an_inquiry_holds_no_money_and_leaves_refunds_open(order):
    pay(order)
    open_dispute(order, "warning_needs_response")

    book = amounts.ledger(order)
    assert (order.status, book.chargebacks, book.left_to_refund) == ("disputed", 0, 2500)


# What staff may refund (orders.commands.RefundOrder), against the fake Stripe.


def real_dispute(order, status: str) -> dict:
    """fixtures3.json's dispute of the charge the fake Stripe made for `order`."""
    return so.dispute_obj(
        order, "dp_1", status, payment_intent=order.stripe_payment_intent_id,
        charge=order.stripe_charge_id,
    )  # fmt: skip


def test_no_refund_is_sent_while_a_chargeback_is_open_or_after_it_is_lost(
    client, fake_stripe, staff
):
    order = paid_order(client, fake_stripe)
    deliver(order, "charge.dispute.created", real_dispute(order, "needs_response"))

    button = order_commands.refund.button(order, by=staff, url="")
    assert button.reason == order_commands.CHARGEBACK_HOLDS  # shown disabled, with why
    with pytest.raises(Refused) as refused:
        order_commands.refund.run(order, by=staff)
    assert "chargeback" in refused.value.words

    deliver(order, "charge.dispute.closed", real_dispute(order, "lost"))
    with pytest.raises(Refused):
        order_commands.refund.run(order, by=staff)
    assert fake_stripe.requests_to("POST", "/v1/refunds") == []


def test_a_refund_during_an_inquiry_is_sent_as_stripe_allows(client, fake_stripe, staff):
    order = paid_order(client, fake_stripe)
    deliver(order, "charge.dispute.created", real_dispute(order, "warning_needs_response"))
    assert order.status == "disputed"

    refund = order_commands.refund.run(order, by=staff)

    order.refresh_from_db()
    assert (refund.status, order.status) == ("succeeded", "refunded")


@pytest.mark.parametrize(
    ("currency", "price", "amount", "step"),
    [("kwd", 25_000, 1_235, "KWD 0.010"), ("isk", 250_000, 1_050, "ISK 1")],
)
def test_a_refund_smaller_than_the_currencys_step_is_refused_in_words(
    client, fake_stripe, staff, currency, price, amount, step
):
    order = paid_order(client, fake_stripe, price_cents=price, currency=currency)

    with pytest.raises(Refused) as refused:
        order_commands.refund.run(order, by=staff, amount_cents=amount)

    assert step in refused.value.words.replace("\xa0", " ")
    assert fake_stripe.requests_to("POST", "/v1/refunds") == []
    order_commands.refund.run(
        order, by=staff, amount_cents=amount - amount % (10 if currency == "kwd" else 100)
    )


def test_a_refund_by_seat_revokes_the_chosen_licenses_and_no_other_orders(
    client, fake_stripe, staff
):
    order = paid_order(client, fake_stripe, quantity=3)
    other = paid_order(client, fake_stripe, email="other@example.com")
    first, second, third = order.licenses.order_by("id")
    stranger = other.licenses.get()

    with pytest.raises(Refused) as refused:
        order_commands.refund.run(order, by=staff, amount_cents=833, seats=[stranger.pk])
    assert f"#{stranger.pk}" in refused.value.words
    refund = order_commands.refund.run(
        order, by=staff, amount_cents=833, seats=[second.pk, third.pk]
    )

    assert refund.seats == [second.pk, third.pk]
    statuses = dict(License.objects.values_list("pk", "status"))
    assert [statuses[x.pk] for x in (first, second, third)] == ["active", "revoked", "revoked"]
    assert statuses[stranger.pk] == "active"
    order.refresh_from_db()
    assert order.status == "completed"
    assert fields_of(order, "order.refunded")["Licenses revoked"] == "2 licenses with this refund"
    with pytest.raises(Refused):  # revoked already
        order_commands.refund.run(order, by=staff, amount_cents=833, seats=[second.pk])
    assert len(fake_stripe.requests_to("POST", "/v1/refunds")) == 1


# What /mgmt and /account say.


def _page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode().replace("\xa0", " ")


def test_mgmt_and_account_show_a_chargeback_after_a_partial_refund_as_the_ledger_has_it(order):
    from tests.account_support import client_as, customer

    customer(order.email)
    pay(order)
    deliver(order, "refund.created", so.refund_obj(order, "re_1", 1000))
    deliver(order, "charge.dispute.closed", dispute_with_fee(order, "lost", (-2500, 1500)))
    staff_client = client_as("staff")

    mgmt = _page(staff_client, f"/mgmt/orders/{order.number}/")

    ledger = mgmt[mgmt.index('id="ledger"') :]
    ledger = ledger[: ledger.index("</dl>")]
    for label, amount in [("Charged", "$25.00"), ("Refunded", "$10.00"), ("Chargebacks", "$25.00"),
                          ("Dispute fees", "$15.00"), ("Net", "−$25.00")]:  # fmt: skip
        assert f"<dt>{label}</dt><dd>{amount}</dd>" in ledger
    assert "<dt>Left to refund</dt><dd>none: a chargeback holds the money</dd>" in ledger
    assert "fee $15.00" in mgmt
    assert "Stripe: requested_by_customer" in mgmt


def test_account_tells_a_pending_refund_then_a_failed_one(client, order):
    from tests.account_support import sign_in

    sign_in(client, order.email)
    pay(order)
    deliver(order, "refund.created", so.refund_obj(order, "re_1", 2500, "pending"))
    url = f"/account/orders/{order.number}/"

    assert "A refund of $25.00 is on its way to you" in _page(client, url)

    deliver(order, "refund.failed", so.refund_obj(order, "re_1", 2500, "failed"))
    page = _page(client, url)

    assert "A refund of $25.00 is on its way" not in page
    assert "went back to you" not in page
    assert "A refund to you failed; we are looking into it" in page


def test_refund_and_dispute_embeds_say_what_the_shop_keeps(order):
    """The ledger's net in Discord: after a partial refund, and after a chargeback lost on top of
    it with Stripe's fee (below zero: the shop paid for the sale)."""
    pay(order)
    deliver(order, "refund.created", so.refund_obj(order, "re_1", 1000))
    assert fields_of(order, "order.refunded")["Net"] == "$15.00"

    deliver(order, "charge.dispute.closed", dispute_with_fee(order, "lost", (-2500, 1500)))
    assert fields_of(order, "order.dispute_closed")["Net"] == "−$25.00"
