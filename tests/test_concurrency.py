"""Stripe delivers events concurrently, and the success page races the webhook (DESIGN, "Orders
and the state machine"). Real threads against PostgreSQL's row and advisory locks; on SQLite every
write transaction runs alone, so there is nothing to race."""

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client

from accounts.models import User
from audit.commands import Refused
from orders import amounts, signals
from orders import commands as order_commands
from orders.checkout import fulfil_session, start_checkout
from orders.gateways.offline import OfflineGateway
from orders.models import OfflineObject, Order, Refund, StripeEvent
from orders.webhooks import handle_stripe_event
from testkit.lifecycles import LIFECYCLES, assert_one_row_per_real_change, events_for, final_state
from testkit.signing import signed_post
from testkit.stripe_objects import charge_obj, dispute_obj, make_event, refund_obj, session_obj
from tests.factories import make_order

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: SQLite runs one write transaction at a time, so nothing races",
    ),
]

SIGNALS = ["order_transitioned", "payment_completed", "refund_counted", "dispute_changed"]


@pytest.fixture
def sent():
    """How many times each of `orders.signals` was sent, per (signal, order pk), from any thread."""
    counts: Counter[tuple[str, int]] = Counter()
    lock = threading.Lock()

    def receiver(name: str) -> Callable[..., None]:
        def record(sender, order, **kwargs):
            with lock:
                counts[name, order.pk] += 1

        return record

    for name in SIGNALS:
        getattr(signals, name).connect(receiver(name), weak=False, dispatch_uid=f"race-{name}")
    yield counts
    for name in SIGNALS:
        getattr(signals, name).disconnect(dispatch_uid=f"race-{name}")


def run_together(*calls: Callable[[], Any]) -> list[Any]:
    """Run each call in its own thread, all released at once; each call's result or exception."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(n: int, call: Callable[[], Any]) -> None:
        try:
            connection.ensure_connection()
            barrier.wait(timeout=30)
            results[n] = call()
        except Exception as error:
            results[n] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread never finished"
    return results


def moves(order: Order) -> list[tuple[str, str]]:
    return list(order.transitions.values_list("from_status", "to_status"))


def deliver(event: dict[str, Any]) -> Callable[[], str]:
    return lambda: handle_stripe_event(event).outcome


def paid_order() -> Order:
    order = make_order()
    handle_stripe_event(make_event("checkout.session.completed", session_obj(order)))
    order.refresh_from_db()
    assert order.status == "completed"
    return order


def test_eight_simultaneous_deliveries_of_one_event_store_it_once_and_complete_the_order_once(
    sent,
):
    order = make_order()
    event = make_event("checkout.session.completed", session_obj(order))

    answers = run_together(*[lambda: signed_post(Client(), event).status_code] * 8)

    assert answers == [200] * 8
    assert StripeEvent.objects.filter(id=event["id"]).count() == 1
    assert StripeEvent.objects.get(id=event["id"]).outcome == "applied"
    assert moves(order) == [("", "pending"), ("pending", "completed")]
    assert sent["payment_completed", order.pk] == 1
    assert sent["order_transitioned", order.pk] == 1


def offline_checkout() -> Order:
    order = make_order()
    start_checkout(order)
    order.refresh_from_db()
    return order


def pay(session_id: str) -> None:
    """The buyer pays on the TEST MODE page: in one transaction, as the page does; its signed
    event reaches our webhook when that transaction commits, in the same thread."""
    with transaction.atomic():
        OfflineGateway().pay(session_id)


def pay_at_stripe(session_id: str) -> dict[str, Any]:
    """What Stripe holds once the buyer paid by card: the charge, and the session completed and
    paid. Stored the way the offline gateway keeps them, so `retrieve_session` finds them, but
    without delivering the event: the test delivers it, racing the success page."""
    session = OfflineObject.objects.get(id=session_id).data
    charge = {
        "id": f"ch_test_{session_id[-12:]}",
        "object": "charge",
        "amount": session["amount_total"],
        "amount_refunded": 0,
        "currency": session["currency"],
        "payment_intent": session["payment_intent"],
        "paid": True,
        "status": "succeeded",
        "payment_method_details": {"type": "card", "card": {"brand": "visa", "last4": "4242"}},
    }
    OfflineObject.objects.create(id=charge["id"], kind="charge", data=charge)
    session.update(status="complete", payment_status="paid", latest_charge=charge["id"])
    OfflineObject.objects.filter(id=session_id).update(data=session)
    return session


def test_the_webhook_racing_the_success_page_completes_the_order_once(sent):
    for _ in range(5):
        order = offline_checkout()
        session = pay_at_stripe(order.stripe_session_id)
        event = make_event("checkout.session.completed", session)

        def success_page(session_id: str = order.stripe_session_id) -> str:
            return fulfil_session(session_id).status

        webhook = [lambda event=event: signed_post(Client(), event).status_code] * 3
        results = run_together(*webhook, *[success_page] * 5)

        assert results == [200] * 3 + ["completed"] * 5
        order.refresh_from_db()
        assert moves(order) == [("", "pending"), ("pending", "completed")]
        assert sent["payment_completed", order.pk] == 1
        assert order.stripe_payment_intent_id == session["payment_intent"]
        assert order.stripe_charge_id == session["latest_charge"]
        assert order.payment_method == "Visa •••• 4242"
        assert StripeEvent.objects.filter(id=event["id"]).count() == 1


def test_the_buyer_paying_races_success_pages_that_keep_asking(sent):
    order = offline_checkout()
    session_id = order.stripe_session_id
    paid = threading.Event()

    def buyer_pays() -> None:
        try:
            pay(session_id)
        finally:
            paid.set()

    def success_page_until_paid() -> str:
        while True:
            # Once pay() returned, its event was delivered: one more look must find it completed.
            last_look = paid.is_set()
            status = fulfil_session(session_id).status
            if status != "pending" or last_look:
                return status

    results = run_together(buyer_pays, *[success_page_until_paid] * 4)

    assert results == [None] + ["completed"] * 4
    order.refresh_from_db()
    assert moves(order) == [("", "pending"), ("pending", "completed")]
    assert sent["payment_completed", order.pk] == 1
    assert StripeEvent.objects.get(type="checkout.session.completed").outcome in (
        "applied",
        "no_change",
    )


def test_simultaneous_refund_and_dispute_events_are_all_applied_once(sent):
    order = paid_order()
    dispute = dispute_obj(order, f"dp_{order.number}")
    events = [
        make_event("refund.created", refund_obj(order, f"re_{order.number}", 1000)),
        make_event("charge.refunded", charge_obj(order, refunded=1000)),
        make_event("charge.dispute.created", dispute),
        make_event("charge.dispute.funds_withdrawn", dispute),
    ]

    results = run_together(*[deliver(event) for event in events * 2])

    assert not [r for r in results if isinstance(r, Exception)], results
    order.refresh_from_db()
    assert order.status == "disputed"
    assert amounts.refunded(order) == 1000
    assert list(order.refunds.values_list("amount_cents", "status")) == [(1000, "succeeded")]
    assert list(order.disputes.values_list("status", "funds_withdrawn")) == [
        ("needs_response", True)
    ]
    assert moves(order) == [("", "pending"), ("pending", "completed"), ("completed", "disputed")]
    assert sent["refund_counted", order.pk] == 1
    assert sent["dispute_changed", order.pk] == 1
    assert StripeEvent.objects.filter(id__in=[e["id"] for e in events]).count() == 4


def test_a_refund_racing_the_event_that_names_its_payment_intent_is_applied_every_time(sent):
    for _ in range(20):
        order = make_order()
        paid = make_event("checkout.session.completed", session_obj(order))
        full = refund_obj(order, f"re_{order.number}", order.subtotal_cents)
        refund = make_event("refund.created", full)

        results = run_together(deliver(paid), deliver(refund))

        assert not [r for r in results if isinstance(r, Exception)], results
        order.refresh_from_db()
        assert order.status == "refunded"
        assert list(order.refunds.values_list("status", flat=True)) == ["succeeded"]
        assert StripeEvent.objects.get(id=refund["id"]).outcome == "applied"
        assert StripeEvent.objects.get(id=refund["id"]).order == order
        assert sent["refund_counted", order.pk] == 1
        assert sent["payment_completed", order.pk] == 1
        assert_one_row_per_real_change(order)


def test_a_dispute_racing_the_event_that_names_its_payment_intent_is_applied_every_time(sent):
    for _ in range(20):
        order = make_order()
        paid = make_event("checkout.session.completed", session_obj(order))
        dispute = make_event("charge.dispute.created", dispute_obj(order, f"dp_{order.number}"))

        results = run_together(deliver(paid), deliver(dispute))

        assert not [r for r in results if isinstance(r, Exception)], results
        order.refresh_from_db()
        assert order.status == "disputed"
        assert list(order.disputes.values_list("status", flat=True)) == ["needs_response"]
        assert StripeEvent.objects.get(id=dispute["id"]).outcome == "applied"
        assert sent["dispute_changed", order.pk] == 1
        assert_one_row_per_real_change(order)


@pytest.mark.parametrize("lifecycle", LIFECYCLES)
def test_all_of_an_orders_events_delivered_at_once_twice_end_as_the_in_order_sequence(lifecycle):
    in_order = make_order()
    for event in events_for(in_order, lifecycle):
        handle_stripe_event(event)
    for _ in range(3):
        order = make_order()
        events = events_for(order, lifecycle)

        results = run_together(*[deliver(event) for event in events * 2])

        assert not [r for r in results if isinstance(r, Exception)], results
        assert final_state(order) == final_state(in_order)
        assert_one_row_per_real_change(order)
        stored = StripeEvent.objects.filter(id__in=[e["id"] for e in events])
        assert stored.count() == len(events)
        assert not stored.filter(outcome=StripeEvent.Outcome.UNKNOWN_ORDER).exists()


def paid_offline_order() -> Order:
    order = offline_checkout()
    pay(order.stripe_session_id)
    order.refresh_from_db()
    assert order.status == "completed"
    return order


def staff_refund(order: Order, staff: User, **form: Any) -> Callable[[], Refund]:
    # Each click is its own request: its own copy of the order, as loaded by the view.
    return lambda: order_commands.refund.run(Order.objects.get(pk=order.pk), by=staff, **form)


def test_staff_completing_an_order_while_its_payment_arrives_completes_it_once(sent, staff):
    for _ in range(5):
        order = offline_checkout()
        session = pay_at_stripe(order.stripe_session_id)
        event = make_event("checkout.session.completed", session)

        def staff_complete(pk: int = order.pk) -> str:
            return order_commands.complete.run(
                Order.objects.get(pk=pk), by=staff, note="paid by wire"
            ).status

        def success_page(session_id: str = order.stripe_session_id) -> str:
            return fulfil_session(session_id).status

        results = run_together(
            lambda event=event: signed_post(Client(), event).status_code,
            success_page,
            staff_complete,
        )

        assert results[:2] == [200, "completed"], results
        assert results[2] == "completed" or isinstance(results[2], Refused), results
        order.refresh_from_db()
        assert moves(order) == [("", "pending"), ("pending", "completed")]
        assert sent["payment_completed", order.pk] == 1
        assert order.stripe_payment_intent_id == session["payment_intent"]


def assert_one_refund(results: list) -> None:
    """Both clicks either got the one refund (one Idempotency-Key, one answer) or were refused."""
    refunds = [r for r in results if isinstance(r, Refund)]
    refused = [r for r in results if isinstance(r, Refused)]
    assert refunds and len(refunds) + len(refused) == 2, results
    assert len({r.pk for r in refunds}) == 1, results


def test_a_double_clicked_full_refund_refunds_once(staff):
    order = paid_offline_order()

    results = run_together(staff_refund(order, staff), staff_refund(order, staff))

    assert_one_refund(results)
    order.refresh_from_db()
    assert order.status == "refunded"
    assert list(order.refunds.values_list("amount_cents", flat=True)) == [order.total_cents]
    assert amounts.refunded(order) == order.total_cents
    assert OfflineObject.objects.filter(kind="refund").count() == 1


def test_a_double_clicked_partial_refund_refunds_once(staff):
    order = paid_offline_order()
    form = {"amount_cents": 1000, "seen_returned": 0, "reason": "goodwill"}

    results = run_together(staff_refund(order, staff, **form), staff_refund(order, staff, **form))

    assert_one_refund(results)
    order.refresh_from_db()
    assert order.status == "completed"
    assert list(order.refunds.values_list("amount_cents", "sequence")) == [(1000, 1)]
    assert amounts.refunded(order) == 1000
    assert OfflineObject.objects.filter(kind="refund").count() == 1
