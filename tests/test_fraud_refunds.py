"""STRIPE_REFUND_ON_FRAUD_WARNING: an actionable early fraud warning is refunded in full, with
Stripe's reason `fraudulent`, by the refund_fraud_warnings worker through the refund command;
the webhook itself never calls Stripe. Against the fake Stripe (testkit/fake_stripe.py), which
raises warnings and reviews as Stripe does."""

import pytest
from django.core.management import call_command

from audit.commands import Refused
from audit.models import Action
from licenses.models import License
from orders import commands as order_commands
from orders.fraud_refunds import refund_due_warnings
from orders.models import FraudWarning, Order, Refund
from orders.webhooks import handle_stripe_event
from tests.factories import make_product
from tests.test_stripe_gateway import buy

pytestmark = pytest.mark.django_db
Due = FraudWarning.AutoRefund


def paid(client, fake_stripe, *, price_cents: int = 2500) -> Order:
    _, order = buy(client, make_product(price_cents=price_cents))
    fake_stripe.pay(order.stripe_session_id)
    for event in fake_stripe.events:
        handle_stripe_event(event)
    order.refresh_from_db()
    assert order.status == "completed"
    return order


def deliver(fake_stripe, event: dict) -> None:
    handle_stripe_event(event)


def refunds_asked(fake_stripe) -> list:
    return fake_stripe.requests_to("POST", "/v1/refunds")


def test_off_by_default_a_warning_refunds_nothing(client, fake_stripe, settings):
    assert settings.STRIPE_REFUND_ON_FRAUD_WARNING is False
    order = paid(client, fake_stripe)
    deliver(fake_stripe, fake_stripe.raise_fraud_warning(order.stripe_payment_intent_id))

    assert refund_due_warnings() == 0
    assert FraudWarning.objects.get().auto_refund == Due.NONE
    assert refunds_asked(fake_stripe) == []
    order.refresh_from_db()
    assert (order.status, order.fraud_actionable) == ("completed", True)


def test_on_the_webhook_only_marks_the_refund_due_and_the_worker_makes_it(
    client, fake_stripe, settings
):
    settings.STRIPE_REFUND_ON_FRAUD_WARNING = True
    order = paid(client, fake_stripe)
    deliver(fake_stripe, fake_stripe.raise_fraud_warning(order.stripe_payment_intent_id))

    # The webhook's transaction asked Stripe for nothing.
    assert refunds_asked(fake_stripe) == []
    assert FraudWarning.objects.get().auto_refund == Due.DUE

    call_command("refund_fraud_warnings", "--once")

    [asked] = refunds_asked(fake_stripe)
    assert asked.form["reason"] == "fraudulent"
    assert asked.form["payment_intent"] == order.stripe_payment_intent_id
    assert int(asked.form.get("amount", order.total_cents)) == order.total_cents
    order.refresh_from_db()
    assert order.status == "refunded"
    refund = Refund.objects.get(order=order)
    assert refund.stripe_reason == "fraudulent"
    assert "early fraud warning" in refund.reason
    assert sorted(License.objects.filter(order=order).values_list("status", "reason")) == [
        ("revoked", "refund")
    ]
    warning = FraudWarning.objects.get()
    assert warning.auto_refund == Due.DONE
    assert refund.stripe_refund_id in warning.auto_refund_detail
    action = Action.objects.get(command="orders.refund_fraud_warning", outcome="done")
    assert action.user is None and action.order_id == order.pk

    # Stripe's own events follow (the refund, and the warning no longer actionable): facts
    # already known, and the worker has nothing left to do.
    for event in fake_stripe.events:
        handle_stripe_event(event)
    order.refresh_from_db()
    assert order.fraud_actionable is False
    assert Refund.objects.filter(order=order).count() == 1
    call_command("refund_fraud_warnings", "--once")
    assert len(refunds_asked(fake_stripe)) == 1


def test_a_warning_no_longer_actionable_is_not_refunded(client, fake_stripe, settings):
    settings.STRIPE_REFUND_ON_FRAUD_WARNING = True
    order = paid(client, fake_stripe)
    event = fake_stripe.raise_fraud_warning(order.stripe_payment_intent_id)
    deliver(fake_stripe, event)
    updated = {**event, "id": event["id"] + "_upd", "type": "radar.early_fraud_warning.updated"}
    updated["created"] += 1
    updated["data"] = {"object": {**event["data"]["object"], "actionable": False}}
    deliver(fake_stripe, updated)

    assert refund_due_warnings() == 1
    assert refunds_asked(fake_stripe) == []
    warning = FraudWarning.objects.get()
    assert warning.auto_refund == Due.SKIPPED
    assert "no longer" in warning.auto_refund_detail


def test_a_warning_on_an_order_staff_refunded_already_is_skipped_in_words(
    client, fake_stripe, settings, staff
):
    settings.STRIPE_REFUND_ON_FRAUD_WARNING = True
    order = paid(client, fake_stripe)
    deliver(fake_stripe, fake_stripe.raise_fraud_warning(order.stripe_payment_intent_id))
    order_commands.refund.run(order, by=staff, reason="asked")

    refund_due_warnings()

    assert len(refunds_asked(fake_stripe)) == 1  # staff's only
    warning = FraudWarning.objects.get()
    assert (warning.auto_refund, warning.auto_refund_detail) == (
        Due.SKIPPED,
        "Only a completed order can be refunded; this one is refunded.",
    )


def test_a_timeout_leaves_the_refund_due_and_the_retry_refunds_once(client, fake_stripe, settings):
    settings.STRIPE_REFUND_ON_FRAUD_WARNING = True
    settings.STRIPE_TIMEOUT = 0.3
    order = paid(client, fake_stripe)
    deliver(fake_stripe, fake_stripe.raise_fraud_warning(order.stripe_payment_intent_id))
    fake_stripe.fail_next("timeout", times=2)  # the SDK's own retry times out as well

    refund_due_warnings()
    assert FraudWarning.objects.get().auto_refund == Due.DUE

    refund_due_warnings()
    keys = {r.headers.get("Idempotency-Key") for r in refunds_asked(fake_stripe)}
    assert len(keys) == 1  # the same key: Stripe answers with the one refund it made
    assert len(fake_stripe.refunds) == 1
    assert FraudWarning.objects.get().auto_refund == Due.DONE


def test_no_person_may_run_the_fraud_warning_refund(client, fake_stripe, staff):
    order = paid(client, fake_stripe)
    assert order_commands.refund_fraud_warning.refusal(order, by=staff)
    with pytest.raises(Refused):
        order_commands.refund_fraud_warning.run(order, by=staff, stripe_reason="fraudulent")
    assert refunds_asked(fake_stripe) == []


def test_the_fake_stripe_reviews_hold_and_release_keys(client, fake_stripe):
    order = paid(client, fake_stripe)
    opened = fake_stripe.open_review(order.stripe_payment_intent_id)
    deliver(fake_stripe, opened)
    assert License.objects.get(order=order).status == "suspended"

    deliver(fake_stripe, fake_stripe.close_review(opened["data"]["object"]["id"], "approved"))
    assert License.objects.get(order=order).status == "active"


def test_a_review_refunded_as_fraud_on_the_fake_stripe_revokes_the_keys(client, fake_stripe):
    order = paid(client, fake_stripe)
    opened = fake_stripe.open_review(order.stripe_payment_intent_id)
    deliver(fake_stripe, opened)
    start = len(fake_stripe.events)
    fake_stripe.close_review(opened["data"]["object"]["id"], "refunded_as_fraud")
    for event in fake_stripe.events[start:]:
        handle_stripe_event(event)

    order.refresh_from_db()
    assert order.status == "refunded"
    assert Refund.objects.get(order=order).stripe_reason == "fraudulent"
    assert License.objects.get(order=order).status == "revoked"


def test_a_warning_before_its_payment_waits_without_holding_up_the_others(
    client, fake_stripe, settings
):
    """Stripe's warnings come days after the payment, yet an event may be late: a due refund
    waits for the paid fact, and the warnings behind it are refunded meanwhile."""
    from testkit.stripe_objects import fraud_warning_obj, make_event
    from tests.factories import make_order

    settings.STRIPE_REFUND_ON_FRAUD_WARNING = True
    unpaid = make_order()
    unpaid.stripe_charge_id = f"ch_{unpaid.number}"  # known, though its payment is not yet
    unpaid.save()
    handle_stripe_event(make_event("radar.early_fraud_warning.created", fraud_warning_obj(unpaid)))
    order = paid(client, fake_stripe)
    deliver(fake_stripe, fake_stripe.raise_fraud_warning(order.stripe_payment_intent_id))

    assert refund_due_warnings() == 1

    first, second = FraudWarning.objects.order_by("id")
    assert (first.order_id, first.auto_refund) == (unpaid.pk, Due.DUE)
    assert (second.order_id, second.auto_refund) == (order.pk, Due.DONE)
