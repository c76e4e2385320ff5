"""Every written-out statement (<app>/statements.py) against its ORM twin (`<name>_orm`), on the
same rows: what one reads the other reads, what one writes the other writes. The suite runs on
SQLite, and on PostgreSQL with DATABASE_URL: each pair is compared on both.

Each comparison says which statements it covers (`@compares`), and the first test fails when a
statement has no twin or no comparison here."""

import ast
import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from dashboards import statements as dashboard_statements
from licenses import statements as license_statements
from licenses.activations import activate, deactivate
from licenses.keys import hash_fingerprint
from licenses.models import Activation, License
from notifications import statements as notification_statements
from notifications.models import Delivery, Destination, Notification
from orders import statements as order_statements
from orders.models import Dispute, Order, Refund, StripeEvent
from orders.webhooks import handle_stripe_event
from testkit.stripe_objects import make_event, session_obj
from tests.factories import add_item, force_status, make_order, make_product

pytestmark = pytest.mark.django_db

MODULES: list[ModuleType] = [
    order_statements,
    license_statements,
    notification_statements,
    dashboard_statements,
]
# Statements with no ORM twin, and what tests them instead.
WITHOUT_TWIN = {
    # The ORM has no advisory locks: the webhook's concurrency tests show what it serialises.
    "orders.statements.lock_references",
    # One rule, written once: checked against DESIGN's words below, not against a second copy.
    "notifications.statements.insert_notification",
    # A planner setting, not a query: the ORM has none. tests/test_mgmt_search.py checks it.
    "dashboards.statements.planned_for_each_value",
}
# Not statements: what turns the values a written-out SELECT reads into the ORM's.
CONVERTERS = {"licenses.statements.aware", "licenses.statements.uuid_text"}
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
            if qualified in WITHOUT_TWIN or qualified in CONVERTERS:
                continue
            assert hasattr(module, f"{name}_orm"), f"{qualified} has no ORM twin"
            assert qualified in COMPARED, f"{qualified} is compared with its twin nowhere here"


def test_written_out_sql_lives_in_the_statements_modules_only():
    """No app module but its statements.py (and shop/rows.py, their helpers) opens a cursor or
    runs raw SQL: a statement found elsewhere has no twin and no comparison."""
    root = settings.BASE_DIR
    allowed = {root / "shop" / "rows.py", *(root / m.__file__ for m in MODULES)}
    found = []
    for folder in ["accounts", "audit", "orders", "licenses", "notifications", "workers",
                   "dashboards", "shop", "config"]:  # fmt: skip
        for path in (root / folder).rglob("*.py"):
            if path in allowed or "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("cursor", "raw", "extra")
                ):
                    found.append(f"{path.relative_to(root)}:{node.lineno} .{node.func.attr}()")
    assert found == []


def fields(row: models.Model | None) -> dict[str, Any] | None:
    """A row's stored values, as the instance holds them."""
    if row is None:
        return None
    return {f.attname: getattr(row, f.attname) for f in row._meta.concrete_fields}


def written(statement: Callable, *args: Any, read: Callable[[], Any], **kwargs: Any) -> Any:
    """What `statement` answers and `read()` finds after it, undone afterwards."""
    with transaction.atomic():
        answer = statement(*args, **kwargs), read()
        transaction.set_rollback(True)
    return answer


def writes_alike(statement: Callable, *args: Any, read: Callable[[], Any], **kwargs: Any) -> Any:
    """`statement` and its twin, each from the same rows, answer alike and leave what `read()`
    finds alike; returns the statement's answer and what it left."""
    twin = getattr(inspect.getmodule(statement), f"{statement.__name__}_orm")
    done = written(statement, *args, read=read, **kwargs)
    assert done == written(twin, *args, read=read, **kwargs), statement.__name__
    return done


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
            order=order, stripe_dispute_id=f"dp_{n}", amount_cents=100 + n, currency="usd",
            status=status, reason=reason, fee_cents=1500 if n == 0 else 0,
            fee_currency="usd" if n == 0 else "",
        )  # fmt: skip

    assert same(order_statements.dispute_statuses, order) == [
        ("lost", "fraudulent", 100, 1500, "usd"),
        ("needs_response", "", 101, 0, ""),
        ("warning_closed", "general", 102, 0, ""),
    ]
    assert same(order_statements.dispute_statuses, untouched) == []


# licenses


def issue(quantity: int = 1, **terms: Any) -> list[License]:
    order = make_order(product=make_product(**terms), quantity=quantity)
    handle_stripe_event(make_event("checkout.session.completed", session_obj(order)))
    return list(order.licenses.order_by("id"))


@pytest.fixture
def limited() -> License:
    return issue(max_activations=2, license_days=365)[0]


@compares(license_statements.find_license, license_statements.find_license_with_device)
def test_the_license_apis_look_ups(limited):
    def normalised(row: tuple | None) -> tuple | None:
        if row is None:
            return None
        row = list(row)
        row[1], row[3] = license_statements.uuid_text(row[1]), license_statements.aware(row[3])
        if len(row) > 7 and row[7] is not None:
            row[8] = license_statements.uuid_text(row[8])
            row[9] = license_statements.aware(row[9])
        return tuple(row)

    activate(limited, fingerprint="fp-1")
    deactivate(activate(limited, fingerprint="fp-2").activation)
    for key_hash in (limited.key_hash, "0" * 64):
        twin = license_statements.find_license_orm(key_hash)
        assert normalised(license_statements.find_license(key_hash)) == normalised(twin)
        for fingerprint in ("fp-1", "fp-2", "fp-3"):
            digest = hash_fingerprint(fingerprint)
            read = license_statements.find_license_with_device(key_hash, digest)
            twin = license_statements.find_license_with_device_orm(key_hash, digest)
            assert normalised(read) == normalised(twin), (key_hash, fingerprint)
    device = Activation.objects.get(license=limited, deactivated_at=None)
    found = license_statements.find_license_with_device(limited.key_hash, hash_fingerprint("fp-1"))
    assert normalised(found)[5:8] == (limited.product.slug, 1, device.pk)


@compares(license_statements.lock_license)
def test_a_license_read_under_its_lock(limited):
    activate(limited, fingerprint="a")
    activate(limited, fingerprint="b")  # sets limit_reached_at
    License.objects.filter(pk=limited.pk).update(status="suspended")
    never = issue()[0]
    for lookup in ({"pk": limited.pk}, {"key_hash": limited.key_hash}, {"pk": 0}, {"pk": never.pk}):
        with transaction.atomic():
            read = license_statements.lock_license(**lookup)
            assert read == license_statements.lock_license_orm(**lookup), lookup
    assert license_statements.lock_license(pk=limited.pk).limit_reached_at is not None


@compares(license_statements.count_devices)
def test_a_licenses_devices_counted(limited):
    first = activate(limited, fingerprint="a").activation
    activate(limited, fingerprint="b")
    deactivate(first)
    activate(limited, fingerprint="c")
    for fingerprint in ("a", "b", "c", "z"):
        digest = hash_fingerprint(fingerprint)
        assert same(license_statements.count_devices, limited.pk, digest)[0] == 2
    assert same(license_statements.count_devices, 0, hash_fingerprint("a")) == (0, None)


def licenses_in_every_status() -> tuple[Order, Any]:
    """An order with a license in each status, a dispute closed and two open, and how to read
    its licenses back."""
    licenses = issue(quantity=4)
    order = licenses[0].order
    for license, status in zip(
        licenses, ["active", "pending", "suspended", "revoked"], strict=True
    ):
        License.objects.filter(pk=license.pk).update(status=status, reason="staff")
    for n, status in enumerate(["won", "warning_under_review", "needs_response"]):
        Dispute.objects.create(
            order=order, stripe_dispute_id=f"dp_{n}", amount_cents=100, currency="usd",
            status=status,
        )  # fmt: skip
    return order, lambda: [
        fields(row) for row in License.objects.filter(order=order).order_by("id")
    ]


@compares(license_statements.suspend_for_dispute)
def test_an_orders_licenses_suspended_for_its_first_open_dispute():
    order, read = licenses_in_every_status()
    count, after = writes_alike(
        license_statements.suspend_for_dispute, order.pk, timezone.now(), read=read
    )
    assert count == 2
    assert [(row["status"], row["dispute_id"]) for row in after] == [
        ("suspended", "dp_1"), ("suspended", "dp_1"), ("suspended", ""), ("revoked", ""),
    ]  # fmt: skip

    Dispute.objects.filter(order=order).update(status="lost")  # none open: no dispute named
    _, after = writes_alike(
        license_statements.suspend_for_dispute, order.pk, timezone.now(), read=read
    )
    assert {row["dispute_id"] for row in after} == {""}


@compares(license_statements.revoke_licenses)
def test_an_orders_licenses_revoked_with_or_without_a_dispute():
    order, read = licenses_in_every_status()
    for dispute_id in (None, "dp_0"):
        count, after = writes_alike(
            license_statements.revoke_licenses, order.pk, reason="chargeback",
            now=timezone.now(), dispute_id=dispute_id, read=read,
        )  # fmt: skip
        assert count == 3
        assert {row["status"] for row in after} == {"revoked"}
        assert [row["dispute_id"] for row in after] == [dispute_id or ""] * 3 + [""]


# notifications: the outbox's one rule


@pytest.fixture
def destinations() -> dict[str, Destination]:
    """Each kind of destination the rule tells apart, subscribed to order.completed or not."""
    kinds = {
        "on": {},
        "on, other events": {"events": ["order.refunded"]},
        "switched off by staff": {"enabled": False},
        "refused by Discord": {"enabled": False, "disabled_reason": "Unknown Webhook (404)"},
        "refused, other events": {
            "enabled": False, "disabled_reason": "Invalid token (401)", "events": ["order.refunded"],
        },
    }  # fmt: skip
    return {
        name: Destination.objects.create(
            name=name, webhook_id=str(n), token="t", **{"events": ["order.completed"], **fields}
        )
        for n, (name, fields) in enumerate(kinds.items())
    }


def delivered_to(notification: Notification) -> set[str]:
    return set(
        Delivery.objects.filter(notification=notification).values_list(
            "destination__name", flat=True
        )
    )


@pytest.mark.parametrize(
    ("only", "expected"),
    [
        # Subscribed, and switched on or waiting for a fix; never one staff switched off.
        (None, {"on", "refused by Discord"}),
        # A test message goes to each one named, whatever it subscribed to; still not to one
        # staff switched off.
        (
            ["on", "on, other events", "switched off by staff", "refused, other events"],
            {"on", "on, other events", "refused, other events"},
        ),
        (["switched off by staff"], set()),
        ([], set()),
    ],
)
def test_which_destinations_get_a_notification(destinations, only, expected):
    ids = None if only is None else [destinations[name].pk for name in only]
    made = notification_statements.insert_notification(
        Notification(event="order.completed", order=make_order(), embed={"title": "Paid"}), only=ids
    )

    assert delivered_to(made) == expected
    stored = Notification.objects.get(pk=made.pk)
    assert (stored.event, stored.order_id, stored.embed) == (
        "order.completed",
        made.order_id,
        {"title": "Paid"},
    )
    deliveries = Delivery.objects.filter(notification=made)
    assert {(d.status, d.attempts, d.sent_at) for d in deliveries} <= {("pending", 0, None)}


def test_a_notification_without_any_destination_is_kept_with_no_delivery():
    made = notification_statements.insert_notification(
        Notification(event="order.completed", embed={"title": "Paid"})
    )
    assert Notification.objects.filter(pk=made.pk).exists()
    assert delivered_to(made) == set()


# dashboards


@compares(dashboard_statements.bounded_counts)
def test_each_tabs_orders_counted_up_to_a_limit():
    for status, count in (("pending", 1), ("completed", 3), ("refunded", 5)):
        for _ in range(count):
            force_status(make_order(), status)
    tabs = {
        "": Order.objects.all(),
        "completed": Order.objects.filter(status="completed"),
        "refunded": Order.objects.filter(status="refunded").order_by("-created_at"),
        "failed": Order.objects.filter(status="failed"),
    }

    assert same(dashboard_statements.bounded_counts, tabs, 4) == {
        "": 4, "completed": 3, "refunded": 4, "failed": 0,
    }  # fmt: skip
    assert same(dashboard_statements.bounded_counts, tabs, 100)[""] == 9
