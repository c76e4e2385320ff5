"""What the buyer is told by email as their order moves (issue 22): a failed bank debit, a refund
on its way, made or failed, a chargeback opened and closed, a key suspended or reinstated. Written
to the key-email outbox in the change's transaction, sent only by the worker, once per real change,
whatever order and however many times Stripe delivers its events."""

import pytest
from django.core import mail
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import User
from licenses import commands as license_commands
from licenses.emails import send_key_emails
from licenses.models import KeyEmail, License
from orders import commands as order_commands
from orders.models import Order
from testkit.lifecycles import LIFECYCLES, events_for
from testkit.stripe_objects import charge_obj, dispute_obj, intent_failed_obj, refund_obj
from tests.factories import make_order
from tests.test_order_independence import deliver_signed, shuffled_with_duplicates
from tests.test_stripe_gateway import paid_order
from tests.webhook.support import deliver, pay, send, unpaid_session

pytestmark = pytest.mark.django_db


@pytest.fixture
def order() -> Order:
    return make_order()


def notices(order: Order) -> list[tuple[str, str]]:
    rows = KeyEmail.objects.filter(order=order).exclude(kind="keys").order_by("id")
    return list(rows.values_list("kind", "reference"))


def sent_to(order: Order) -> list:
    """The emails the worker sends now, those to this order's buyer."""
    mail.outbox.clear()
    send_key_emails(limit=100)
    return [message for message in mail.outbox if message.to == [order.email]]


def bodies(order: Order) -> str:
    return "\n".join(KeyEmail.objects.filter(order=order).values_list("body", flat=True))


def full_keys(order: Order) -> list[str]:
    return [key for key in order.licenses.values_list("key", flat=True) if key]


def test_a_failed_bank_debit_is_told_with_the_way_to_pay_again(client, order):
    send(client, order, "checkout.session.completed", unpaid_session(order))
    assert notices(order) == []
    event = send(client, order, "checkout.session.async_payment_failed", unpaid_session(order))

    assert order.status == "failed"
    assert notices(order) == [("payment_failed", "attempt-1")]
    assert mail.outbox == []  # the webhook sends nothing itself: the worker does
    (message,) = sent_to(order)
    assert message.subject == f"Your bank payment for order {order.number} did not go through"
    assert f"/orders/{order.public_id}/" in message.body
    assert "Pay again" in message.body and "$25.00" in message.body
    # Stripe delivers it again: still one email.
    deliver(client, {**event.payload})
    assert notices(order) == [("payment_failed", "attempt-1")]


def test_a_declined_card_or_an_abandoned_checkout_sends_no_email(client, order):
    send(client, order, "payment_intent.payment_failed", intent_failed_obj(order))
    expired = unpaid_session(order, status="expired")
    other = make_order()
    send(client, other, "checkout.session.expired", unpaid_session(other, status="expired"))

    assert (order.status, other.status) == ("failed", "failed")
    assert notices(order) == notices(other) == []
    assert expired["status"] == "expired"


def test_a_full_refund_names_the_revoked_licenses_never_their_keys(client, order):
    pay(client, order)
    (license,) = order.licenses.all()
    send(client, order, "refund.created", refund_obj(order, "re_1", order.total_cents))

    assert order.status == "refunded"
    assert notices(order) == [("refunded", "re_1")]
    messages = sent_to(order)
    refund_mail = next(m for m in messages if m.subject.startswith("Refund of $25.00"))
    assert license.product.name in refund_mail.body
    assert f"key ending {license.masked_key}" in refund_mail.body
    assert "Revoked: the order was refunded." in refund_mail.body
    assert license.key not in refund_mail.body


def test_a_partial_refund_says_the_licenses_keep_working(client, order):
    pay(client, order)
    send(client, order, "refund.created", refund_obj(order, "re_1", 1000))

    assert order.status == "completed"
    body = KeyEmail.objects.get(order=order, kind="refunded").body
    assert "We refunded $10.00" in body
    assert "So far $10.00 of $25.00 has been refunded. Your licenses keep working." in body


def test_one_refund_told_by_its_events_and_the_charges_is_one_email(client, order):
    pay(client, order)
    refund = refund_obj(order, "re_1", order.total_cents)
    send(client, order, "charge.refunded", charge_obj(order, refunded=order.total_cents))
    assert send(client, order, "refund.created", refund).outcome == "applied"
    send(client, order, "refund.updated", refund)

    assert [kind for kind, _ in notices(order)] == ["refunded"]


def test_a_refund_that_fails_after_it_was_made_is_told_once(client, order):
    pay(client, order)
    send(client, order, "refund.created", refund_obj(order, "re_1", order.total_cents))
    failed = refund_obj(order, "re_1", order.total_cents, "failed")
    send(client, order, "refund.failed", failed)
    send(client, order, "refund.updated", failed)

    assert notices(order) == [("refunded", "re_1"), ("refund_failed", "re_1")]
    body = KeyEmail.objects.get(order=order, kind="refund_failed").body
    assert "could not reach your account" in body and "we will contact you" in body


def test_a_pending_refund_is_told_once_however_often_it_is_reported(client, order):
    pay(client, order)
    pending = refund_obj(order, "re_p", 1200, "pending")
    for event_type in ("refund.created", "refund.updated", "refund.created"):
        send(client, order, event_type, pending)

    assert notices(order) == [("refund_pending", "re_p")]
    assert [m.subject for m in sent_to(order) if "refund" in m.subject] == [
        f"Your refund of $12.00 for order {order.number} is on its way"
    ]
    send(client, order, "refund.updated", refund_obj(order, "re_p", 1200))
    assert notices(order) == [("refund_pending", "re_p"), ("refunded", "re_p")]


def test_a_chargeback_opened_and_lost_is_told_with_the_licenses_state(client, order):
    pay(client, order)
    opened = dispute_obj(order, "dp_1")
    send(client, order, "charge.dispute.created", opened)
    send(client, order, "charge.dispute.updated", opened)
    send(client, order, "charge.dispute.closed", dispute_obj(order, "dp_1", "lost"))

    assert notices(order) == [
        ("dispute_opened", "dp_1:chargeback"),
        ("dispute_closed", "dp_1:closed:lost"),
    ]
    opened_mail, closed_mail = (
        KeyEmail.objects.get(order=order, kind=k) for k in ("dispute_opened", "dispute_closed")
    )
    assert "opened a chargeback" in opened_mail.subject
    assert "Suspended while the payment is disputed" in opened_mail.body
    assert "the payment was reversed" in closed_mail.subject
    assert "Revoked: your bank reversed the payment (chargeback)." in closed_mail.body
    for key in full_keys(order):
        assert key not in bodies(order)


def test_a_chargeback_won_says_the_keys_work_again(client, order):
    pay(client, order)
    send(client, order, "charge.dispute.created", dispute_obj(order, "dp_1"))
    send(client, order, "charge.dispute.closed", dispute_obj(order, "dp_1", "won"))

    body = KeyEmail.objects.get(order=order, kind="dispute_closed").body
    assert "the payment stands" in body and ": works." in body


def test_an_inquiry_then_its_chargeback_are_two_emails(client, order):
    pay(client, order)
    send(
        client,
        order,
        "charge.dispute.created",
        dispute_obj(order, "dp_1", "warning_needs_response"),
    )
    send(client, order, "charge.dispute.updated", dispute_obj(order, "dp_1", "needs_response"))

    assert notices(order) == [
        ("dispute_opened", "dp_1:inquiry"),
        ("dispute_opened", "dp_1:chargeback"),
    ]
    subjects = list(
        KeyEmail.objects.filter(order=order, kind="dispute_opened").values_list(
            "subject", flat=True
        )
    )
    assert subjects == [
        f"Your bank asked us about order {order.number}",
        f"Your bank opened a chargeback on order {order.number}",
    ]


def test_staff_suspending_and_reinstating_a_key_tell_the_buyer(client, order):
    pay(client, order)
    staff = User.objects.create_superuser("boss@example.com", "pw")
    license = License.objects.get(order=order)
    license_commands.suspend.run(license, by=staff)
    license_commands.reinstate.run(License.objects.get(pk=license.pk), by=staff)

    assert [kind for kind, _ in notices(order)] == ["suspended", "reinstated"]
    suspended, reinstated = KeyEmail.objects.filter(order=order).exclude(kind="keys").order_by("id")
    assert suspended.subject == f"Your {license.product.name} key is suspended"
    assert f"key ending {license.masked_key}" in suspended.body
    assert reinstated.subject == f"Your {license.product.name} key works again"
    assert license.key not in suspended.body + reinstated.body


def test_a_refused_suspension_tells_nobody(client, order):
    pay(client, order)
    send(client, order, "refund.created", refund_obj(order, "re_1", order.total_cents))
    staff = User.objects.create_superuser("boss@example.com", "pw")
    license = License.objects.get(order=order)
    with pytest.raises(Exception):  # noqa: B017 (audit.commands.Refused)
        license_commands.suspend.run(license, by=staff)
    assert [kind for kind, _ in notices(order)] == ["refunded"]


# Lifecycles whose in-order sequence tells the buyer something.
TOLD = [
    "async payment failed",
    "paid, partly then fully refunded",
    "paid, refunded, the refund failed later",
    "dispute lost",
    "dispute lost, won on appeal",
    "inquiry escalated to a chargeback, won",
]


def essential(told: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """What must be told whatever the delivery order: every refund and failure, that a dispute
    opened, and its last outcome. A step that events arriving late skipped (an escalation seen
    only after the dispute closed, a first outcome overtaken by the appeal's) is not told."""
    kept = {(kind, ref) for kind, ref in told if not kind.startswith("dispute_")}
    kept |= {(kind, ref.split(":")[0]) for kind, ref in told if kind == "dispute_opened"}
    closed = [(kind, ref) for kind, ref in told if kind == "dispute_closed"]
    return kept | set(closed[-1:])


@pytest.mark.parametrize("lifecycle", TOLD)
def test_signed_events_in_any_order_with_duplicates_tell_each_change_once(lifecycle):
    in_order = make_order()
    deliver_signed(events_for(in_order, lifecycle))
    expected = notices(in_order)
    assert expected, "the lifecycle tells the buyer something"
    assert LIFECYCLES[lifecycle]

    @settings(
        max_examples=4, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(data=st.data())
    def delivered_in_any_order(data: st.DataObject) -> None:
        order = make_order()
        events = events_for(order, lifecycle)
        deliveries = data.draw(shuffled_with_duplicates(len(events)), label="deliveries")
        deliver_signed([events[n] for n in deliveries])
        told = [(k, r.replace(order.number, in_order.number)) for k, r in notices(order)]
        assert len(told) == len(set(told))
        assert set(told) <= set(expected)
        assert essential(told) == essential(expected)
        deliver_signed(events)  # everything once more: nothing new to tell
        assert len(notices(order)) == len(told)

    delivered_in_any_order()


def test_a_refund_by_seat_names_the_licenses_that_went_with_it(client, fake_stripe):
    order = paid_order(client, fake_stripe, quantity=3)
    first, second, third = order.licenses.order_by("id")
    staff = User.objects.create_superuser("boss@example.com", "pw")
    order_commands.refund.run(order, by=staff, amount_cents=833, seats=[second.pk, third.pk])

    (body,) = KeyEmail.objects.filter(order=order, kind="refunded").values_list("body", flat=True)
    assert "These licenses went with this refund and no longer work" in body
    for gone in (second, third):
        assert f"key ending {gone.masked_key}" in body and gone.key not in body
    assert first.masked_key not in body


def test_seats_recorded_after_stripes_event_counted_the_refund_are_an_email_of_their_own(
    client, fake_stripe
):
    """Stripe's refund.created can beat the answer to the shop's own request: the refund is
    told at once, without licenses; once the answer records the seats, they are revoked and a
    second email names them. Neither is written twice, whatever comes again."""
    from orders.checkout import record_requested_refund

    order = paid_order(client, fake_stripe, quantity=3)
    first, second, third = order.licenses.order_by("id")
    ids = {"payment_intent": order.stripe_payment_intent_id, "charge": order.stripe_charge_id}
    refund = refund_obj(order, "re_late", 833, **ids)
    assert send(client, order, "refund.created", refund).outcome == "applied"
    staff = User.objects.create_superuser("boss@example.com", "pw")
    order = Order.objects.get(pk=order.pk)
    record_requested_refund(
        order, refund, staff=staff, sequence=1, reason="", seats=[second.pk, third.pk]
    )
    send(client, order, "refund.updated", refund)  # told again: nothing new

    statuses = dict(License.objects.values_list("pk", "status"))
    assert [statuses[x.pk] for x in (first, second, third)] == ["active", "revoked", "revoked"]
    told = dict(
        KeyEmail.objects.filter(order=order, kind="refunded").values_list("reference", "body")
    )
    assert set(told) == {"re_late", "re_late:seats"}
    assert "no longer work" not in told["re_late"]
    assert "These licenses went with this refund and no longer work" in told["re_late:seats"]
    for gone in (second, third):
        assert f"key ending {gone.masked_key}" in told["re_late:seats"]
    assert first.masked_key not in told["re_late:seats"]
