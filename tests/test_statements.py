"""Every written-out statement (<app>/statements.py) against its ORM twin (`<name>_orm`), on the
same rows: what one reads the other reads, what one writes the other writes. The suite runs on
SQLite, and on PostgreSQL with DATABASE_URL: each pair is compared on both.

Each comparison says which statements it covers (`@compares`), and the first test fails when a
statement has no twin or no comparison here."""

import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from django.db import models, transaction

from orders import statements as order_statements
from orders.models import Dispute, Order, Refund, StripeEvent
from tests.factories import add_item, make_order, make_product

pytestmark = pytest.mark.django_db

MODULES: list[ModuleType] = [order_statements]
# Statements with no ORM twin, and what tests them instead.
WITHOUT_TWIN = {
    # The ORM has no advisory locks: the webhook's concurrency tests show what it serialises.
    "orders.statements.lock_references",
}
COMPARED: set[str] = set()


def compares(*statements: Callable) -> Callable:
    """Marks a test as the comparison of `statements` with their twins."""
    COMPARED.update(f"{s.__module__}.{s.__name__}" for s in statements)
    return lambda test: test


def written_out(module: ModuleType) -> list[str]:
    return [
        name
        for name, value in inspect.getmembers(module, inspect.isfunction)
        if value.__module__ == module.__name__
        and not name.startswith("_")
        and not name.endswith("_orm")
    ]


def test_every_statement_has_an_orm_twin_and_is_compared_with_it_here():
    for module in MODULES:
        for name in written_out(module):
            qualified = f"{module.__name__}.{name}"
            if qualified in WITHOUT_TWIN:
                continue
            assert hasattr(module, f"{name}_orm"), f"{qualified} has no ORM twin"
            assert qualified in COMPARED, f"{qualified} is compared with its twin nowhere here"


def fields(row: models.Model | None) -> dict[str, Any] | None:
    """A row's stored values, as the instance holds them."""
    if row is None:
        return None
    return {f.attname: getattr(row, f.attname) for f in row._meta.concrete_fields}


def same(statement: Callable, *args: Any) -> Any:
    """`statement(*args)` and its twin's answer, asserted equal; returns the statement's."""
    twin = getattr(inspect.getmodule(statement), f"{statement.__name__}_orm")
    with transaction.atomic():  # row locks need a transaction on PostgreSQL
        written, orm = statement(*args), twin(*args)
    assert written == orm, (statement.__name__, args)
    return written


# orders


@compares(order_statements.items_with_products)
def test_an_orders_items_with_their_products():
    order = make_order(product=make_product(name="Ünïcode", license_days=30), quantity=2)
    add_item(order, product=make_product(max_activations=3), quantity=5)
    add_item(order)
    twin = order_statements.items_with_products_orm(order)

    read = order_statements.items_with_products(order)

    assert [fields(item) for item in read] == [fields(item) for item in twin]
    assert [fields(item.product) for item in read] == [fields(item.product) for item in twin]
    assert len(read) == 3
    assert order_statements.items_with_products(Order(pk=0)) == []


@compares(order_statements.locked_order)
def test_the_newest_order_with_a_reference_locked():
    older, newer, other = make_order(), make_order(), make_order()
    for order, intent in ((older, "pi_shared"), (newer, "pi_shared"), (other, "pi_other")):
        Order.objects.filter(pk=order.pk).update(
            stripe_payment_intent_id=intent, stripe_charge_id=f"ch_{order.number}"
        )
    # Two orders naming one PaymentIntent (a retried payment): the newest is the one meant.
    Order.objects.filter(pk=older.pk).update(created_at=newer.created_at.replace(year=2020))

    for field, value in [
        ("stripe_payment_intent_id", "pi_shared"),
        ("stripe_payment_intent_id", "pi_other"),
        ("stripe_charge_id", f"ch_{older.number}"),
        ("stripe_session_id", f"cs_test_{other.number}"),
        ("public_id", newer.public_id),
        ("stripe_charge_id", "ch_nobody"),
    ]:
        found = order_statements.locked_order(field, value)
        with transaction.atomic():
            twin = order_statements.locked_order_orm(field, value)
        assert fields(found) == fields(twin), (field, value)
    assert order_statements.locked_order("stripe_payment_intent_id", "pi_shared").pk == newer.pk


@compares(order_statements.waiting_events)
def test_the_events_that_wait_for_an_order():
    def stored(event_id: str, created: int, outcome: str, **refs: str) -> None:
        StripeEvent.objects.create(
            id=event_id, type="refund.created", created=created, payload={"id": event_id},
            outcome=outcome, **refs,
        )  # fmt: skip

    waiting = StripeEvent.Outcome.UNKNOWN_ORDER
    stored("evt_3", 3, waiting, payment_intent_id="pi_a")
    stored("evt_1", 1, waiting, charge_id="ch_a")
    stored("evt_2b", 2, waiting, payment_intent_id="pi_b", charge_id="ch_a")
    stored("evt_2a", 2, waiting, charge_id="ch_b")
    stored("evt_done", 0, StripeEvent.Outcome.APPLIED, payment_intent_id="pi_a")

    for refs in (["pi_a"], ["ch_a"], ["pi_a", "ch_a", "ch_b"], ["pi_nobody"]):
        twin = order_statements.waiting_events_orm(refs)
        read = order_statements.waiting_events(refs)
        assert [fields(event) for event in read] == [fields(event) for event in twin], refs
    read = order_statements.waiting_events(["pi_a", "ch_a", "ch_b"])
    assert [event.id for event in read] == ["evt_1", "evt_2a", "evt_2b", "evt_3"]


@compares(order_statements.succeeded_refunds_total)
def test_what_the_refunds_that_succeeded_come_to():
    order, untouched = make_order(), make_order()
    for n, (amount, counted) in enumerate([(500, True), (700, False), (250, True)]):
        Refund.objects.create(
            order=order, stripe_refund_id=f"re_{n}", amount_cents=amount, currency="usd",
            status="succeeded" if counted else "failed", succeeded_once=counted,
        )  # fmt: skip

    assert same(order_statements.succeeded_refunds_total, order) == 750
    assert same(order_statements.succeeded_refunds_total, untouched) == 0


@compares(order_statements.dispute_statuses)
def test_an_orders_disputes_statuses_oldest_first():
    order, untouched = make_order(), make_order()
    for n, (status, reason) in enumerate(
        [("lost", "fraudulent"), ("needs_response", ""), ("warning_closed", "general")]
    ):
        Dispute.objects.create(
            order=order, stripe_dispute_id=f"dp_{n}", amount_cents=100, currency="usd",
            status=status, reason=reason,
        )  # fmt: skip

    assert same(order_statements.dispute_statuses, order) == [
        ("lost", "fraudulent"),
        ("needs_response", ""),
        ("warning_closed", "general"),
    ]
    assert same(order_statements.dispute_statuses, untouched) == []
