import pytest
from django.db import connection, transaction

from orders.models import Order, OrderTransition, Status
from orders.signals import order_transitioned
from orders.transitions import ALLOWED, IllegalTransition, transition_order
from tests.factories import force_status, make_order

pytestmark = pytest.mark.django_db

ILLEGAL = [(a, b) for a in Status.values for b in Status.values if (a, b) not in ALLOWED]


@pytest.fixture
def sent():
    """Every `order_transitioned` send, as seen by a receiver while it runs."""
    calls = []

    def record(sender, order, transition, source, **kwargs):
        calls.append(
            {
                "order": order.pk,
                "transition": transition.pk,
                "source": source,
                "status_in_db": Order.objects.get(pk=order.pk).status,
                "row_in_db": OrderTransition.objects.filter(pk=transition.pk).exists(),
                "in_transaction": connection.in_atomic_block,
            }
        )

    order_transitioned.connect(record, weak=False, dispatch_uid="test-transitions-sent")
    yield calls
    order_transitioned.disconnect(dispatch_uid="test-transitions-sent")


def audit_rows(order: Order) -> list[tuple[str, str, str, str]]:
    return list(
        OrderTransition.objects.filter(order=order).values_list(
            "from_status", "to_status", "source", "reason"
        )
    )


def test_the_table_holds_exactly_the_moves_the_design_lists():
    p, c, f, r, d = "pending", "completed", "failed", "refunded", "disputed"
    design = {(p, c), (p, f), (f, c), (f, p), (c, r), (c, d), (d, c), (d, r)}
    out_of_order = {(p, r), (f, r), (p, d), (f, d)}
    # A lost chargeback appealed, and won (also when the outcome is told before the appeal).
    appeal = {(r, d), (r, c)}
    assert set(ALLOWED) == design | out_of_order | appeal
    assert len(ILLEGAL) == 25 - 14
    assert all((s, s) in ILLEGAL for s in Status.values)


@pytest.mark.parametrize(("current", "to"), list(ALLOWED))
def test_an_allowed_move_writes_the_status_one_audit_row_and_sends_the_signal(current, to, sent):
    order = force_status(make_order(), current)
    before = audit_rows(order)

    row = transition_order(order, to, source="evt_123", reason="why it moved")

    assert Order.objects.get(pk=order.pk).status == to
    assert order.status == to
    assert audit_rows(order) == [*before, (current, to, "evt_123", "why it moved")]
    assert row == OrderTransition.objects.filter(order=order).last()
    assert sent == [
        {
            "order": order.pk,
            "transition": row.pk,
            "source": "evt_123",
            "status_in_db": to,
            "row_in_db": True,
            "in_transaction": True,
        }
    ]


@pytest.mark.parametrize(("current", "to"), ILLEGAL)
def test_an_illegal_move_raises_and_writes_nothing(current, to, sent):
    order = force_status(make_order(), current)
    before = audit_rows(order)

    with pytest.raises(IllegalTransition):
        transition_order(order, to, source="evt_123", reason="should not happen")

    assert Order.objects.get(pk=order.pk).status == current
    assert audit_rows(order) == before
    assert sent == []


def test_a_status_that_does_not_exist_is_an_illegal_move(sent):
    order = make_order()
    with pytest.raises(IllegalTransition):
        transition_order(order, "shipped", source="staff")
    assert Order.objects.get(pk=order.pk).status == Status.PENDING
    assert sent == []


def test_it_checks_the_status_in_the_database_not_the_callers_stale_copy(sent):
    order = make_order()
    stale = Order.objects.get(pk=order.pk)
    transition_order(order, Status.COMPLETED, source="evt_1")

    with pytest.raises(IllegalTransition):
        transition_order(stale, Status.COMPLETED, source="evt_2")
    row = transition_order(stale, Status.REFUNDED, source="evt_3")

    assert (row.from_status, row.to_status) == (Status.COMPLETED, Status.REFUNDED)
    assert [s["source"] for s in sent] == ["evt_1", "evt_3"]


@pytest.fixture
def broken_receiver():
    def broken(sender, **kwargs):
        raise RuntimeError("receiver failed")

    order_transitioned.connect(broken, weak=False, dispatch_uid="test-transitions-broken")
    yield
    order_transitioned.disconnect(dispatch_uid="test-transitions-broken")


# A receiver's failure aborts the caller's whole transaction, so these run without the test's own.
@pytest.mark.django_db(transaction=True)
def test_a_receiver_that_raises_rolls_the_whole_move_back(broken_receiver):
    order = make_order()
    before = audit_rows(order)

    with pytest.raises(RuntimeError, match="receiver failed"):
        transition_order(order, Status.COMPLETED, source="evt_1")

    assert Order.objects.get(pk=order.pk).status == Status.PENDING
    assert audit_rows(order) == before


@pytest.mark.django_db(transaction=True)
def test_a_receiver_that_raises_rolls_back_the_callers_writes_with_the_move(broken_receiver):
    order = make_order()
    email = order.email

    with pytest.raises(RuntimeError, match="receiver failed"), transaction.atomic():
        order.email = "changed@example.com"
        order.save()
        transition_order(order, Status.COMPLETED, source="evt_1")

    stored = Order.objects.get(pk=order.pk)
    assert (stored.status, stored.email) == (Status.PENDING, email)
    assert len(audit_rows(order)) == 1


def test_a_refused_move_leaves_the_callers_transaction_usable():
    order = make_order()
    with transaction.atomic():
        with pytest.raises(IllegalTransition):
            transition_order(order, Status.PENDING, source="evt_1")
        row = transition_order(order, Status.COMPLETED, source="evt_2")
    assert (row.from_status, row.to_status) == (Status.PENDING, Status.COMPLETED)


@pytest.mark.django_db(transaction=True)
def test_the_signal_is_sent_inside_the_transaction_even_when_the_caller_has_none(sent):
    order = make_order()
    assert not connection.in_atomic_block

    transition_order(order, Status.COMPLETED, source="evt_1")

    assert [s["in_transaction"] for s in sent] == [True]
    assert not connection.in_atomic_block


def test_a_long_source_and_reason_are_cut_to_fit_their_columns():
    order = make_order()
    row = transition_order(order, Status.FAILED, source="s" * 300, reason="r" * 600)
    row.refresh_from_db()
    assert (len(row.source), len(row.reason)) == (255, 500)


def test_saving_an_order_writes_its_other_fields_but_never_its_status():
    order = make_order()
    order.status = Status.COMPLETED
    order.email = "changed@example.com"
    order.save()

    stored = Order.objects.get(pk=order.pk)
    assert (stored.status, stored.email) == (Status.PENDING, "changed@example.com")
    assert audit_rows(order) == [("", Status.PENDING, "checkout", "order placed")]


def test_saving_a_stale_order_keeps_the_status_the_state_machine_wrote():
    order = make_order()
    stale = Order.objects.get(pk=order.pk)
    transition_order(order, Status.COMPLETED, source="evt_1")

    stale.payment_method = "Visa •••• 4242"
    stale.save()

    stored = Order.objects.get(pk=order.pk)
    assert (stored.status, stored.payment_method) == (Status.COMPLETED, "Visa •••• 4242")


@pytest.mark.parametrize("fields", [["status"], ["email", "status"]])
def test_saving_with_status_among_the_update_fields_is_refused(fields):
    order = make_order()
    email = order.email
    order.status = Status.COMPLETED
    order.email = "changed@example.com"

    with pytest.raises(ValueError, match="transition_order"):
        order.save(update_fields=fields)

    stored = Order.objects.get(pk=order.pk)
    assert (stored.status, stored.email) == (Status.PENDING, email)
