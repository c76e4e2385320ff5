"""One vocabulary: the statuses Stripe gives refunds and disputes are the models' choices
(orders/statuses.py), and everything that sorts or checks them reads those; an order's amounts
are computed in orders/amounts.py only."""

import pytest

from orders import amounts, disputes, event_shapes
from orders.models import Order, Refund
from orders.statuses import DisputeStatus, RefundStatus
from tests.factories import make_order, make_product


def test_every_dispute_status_has_one_stage():
    opened, appealed, closing = set(disputes.OPEN_RANK), set(disputes.APPEAL_RANK), disputes.CLOSING
    assert opened | appealed | closing == set(DisputeStatus.values)
    assert not (opened & appealed or opened & closing or appealed & closing)
    assert (
        set(DisputeStatus.values)
        >= disputes.INQUIRY | disputes.NEEDS_RESPONSE | disputes.FAVOURABLE
    )


def test_every_refund_status_has_its_rung_on_the_ladder():
    assert set(Refund.RANK) == set(RefundStatus.values)


@pytest.mark.parametrize(
    ("kind", "statuses"), [("refund", RefundStatus.values), ("dispute", DisputeStatus.values)]
)
def test_an_event_is_checked_against_the_models_statuses(kind, statuses):
    event_type = {"refund": "refund.updated", "dispute": "charge.dispute.updated"}[kind]
    for status in statuses:
        event_shapes.check_object(
            event_type, {"object": kind, "id": "x_1", "amount": 100, "status": status}
        )
    with pytest.raises(event_shapes.MalformedEvent, match="status"):
        event_shapes.check_object(
            event_type, {"object": kind, "id": "x_1", "amount": 100, "status": "reversed"}
        )


@pytest.mark.django_db
def test_the_total_in_a_query_is_the_total_of_the_order():
    catalog = make_order(product=make_product(price_cents=2500), quantity=2)
    charged = make_order(product=make_product(price_cents=2500))
    free = make_order(product=make_product(price_cents=2500))
    Order.objects.filter(pk=charged.pk).update(amount_total_cents=2750)  # taxed
    Order.objects.filter(pk=free.pk).update(amount_total_cents=0)  # a 100% promotion code

    in_query = dict(Order.objects.annotate(total=amounts.TOTAL).values_list("pk", "total"))

    for order in Order.objects.all():
        assert in_query[order.pk] == amounts.total(order) == order.total_cents
    assert [amounts.total(Order.objects.get(pk=o.pk)) for o in (catalog, charged, free)] == [
        5000, 2750, 0,
    ]  # fmt: skip


@pytest.mark.django_db
def test_refunded_counts_what_succeeded_and_returned_what_is_on_its_way():
    order = make_order(product=make_product(price_cents=5000))
    Order.objects.filter(pk=order.pk).update(amount_total_cents=5000, refunds_succeeded_cents=1000)
    for n, (amount, status) in enumerate([(1000, "succeeded"), (500, "pending"), (700, "failed")]):
        Refund.objects.create(
            order=order, stripe_refund_id=f"re_{n}", amount_cents=amount, currency="usd",
            status=status, succeeded_once=status == "succeeded",
        )  # fmt: skip
    order.refresh_from_db()

    assert amounts.refunded(order) == 1000  # what the facts count: the status follows it
    assert amounts.returned(order) == 1500  # what staff may no longer refund
    assert amounts.refundable(order) == 3500
    assert amounts.refundable(order, already=4900) == 100
    assert not amounts.is_fully_refunded(order)
    # Stripe's count for the charge includes pending refunds: it never makes the order refunded,
    # but staff may not refund what it says went back (less the refund that failed since).
    order.charge_amount_refunded_cents = 5000
    assert amounts.refunded(order) == 1000 and not amounts.is_fully_refunded(order)
    assert amounts.returned(order) == 4300
    assert amounts.refundable(order) == 700
    order.chargebacks_cents = 5000  # a chargeback holds the money: nothing may be refunded
    assert amounts.refundable(order) == 0
