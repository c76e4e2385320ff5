"""Stripe Radar: early fraud warnings and reviews (issue 21), from Stripe's own example objects
(fixtures3.json's `radar.early_fraud_warning` and `review`), delivered signed."""

import pytest
from django.test import Client

from licenses.models import License
from notifications.models import Notification
from orders.models import FraudWarning, Review, StripeEvent
from testkit.stripe_objects import (
    fraud_warning_obj,
    make_event,
    one_second_later,
    refund_obj,
    review_obj,
    session_obj,
)
from tests.factories import make_order
from tests.webhook.support import deliver, pay, send

pytestmark = pytest.mark.django_db


def licenses_of(order) -> list[tuple[str, str]]:
    return sorted(License.objects.filter(order=order).values_list("status", "reason"))


def fraud_embeds(order) -> list[Notification]:
    return list(Notification.objects.filter(order=order, event="order.fraud_warning"))


def test_an_early_fraud_warning_flags_the_order_and_tells_staff_once(client, order, sent):
    pay(client, order)
    event = make_event("radar.early_fraud_warning.created", fraud_warning_obj(order))

    stored = deliver(client, event)
    deliver(client, event)  # Stripe delivers at least once

    order.refresh_from_db()
    assert stored.outcome == StripeEvent.Outcome.APPLIED
    assert (order.fraud_type, order.fraud_actionable) == ("made_with_stolen_card", True)
    assert sent.count("fraud_warning_raised") == 1
    [embed] = fraud_embeds(order)
    assert embed.embed["color"] == 0xE74C3C
    fields = {f["name"]: f["value"] for f in embed.embed["fields"]}
    assert fields["Fraud type"] == "made with stolen card"
    assert fields["Actionable"] == "yes"
    assert "fraudulent" in fields["Action"]
    # A warning holds no key back: only a review does.
    assert licenses_of(order) == [("active", "")]
    assert order.status == "completed"


def test_a_warning_once_not_actionable_stays_so_whatever_arrives_late(client, order):
    """Stripe stamps `.created` and `.updated` with the same second often enough: actionable
    only ever ends (a dispute or a full refund), so the order of arrival does not matter."""
    pay(client, order)
    same_second = one_second_later()
    created = make_event(
        "radar.early_fraud_warning.created", fraud_warning_obj(order), created=same_second
    )
    updated = make_event(
        "radar.early_fraud_warning.updated",
        fraud_warning_obj(order, actionable=False),
        created=same_second,
    )

    deliver(client, updated)
    deliver(client, created)  # it tells nothing new
    deliver(client, make_event("radar.early_fraud_warning.updated", fraud_warning_obj(order)))

    order.refresh_from_db()
    assert (order.fraud_type, order.fraud_actionable) == ("made_with_stolen_card", False)
    assert FraudWarning.objects.get().actionable is False
    assert len(fraud_embeds(order)) == 1  # one warning, told once whichever event came first


def test_a_warning_before_the_payment_waits_for_the_order_to_know_its_charge(client, order):
    warning = deliver(
        client, make_event("radar.early_fraud_warning.created", fraud_warning_obj(order))
    )
    assert warning.outcome == StripeEvent.Outcome.UNKNOWN_ORDER

    pay(client, order)

    order.refresh_from_db()
    assert order.fraud_type == "made_with_stolen_card"
    assert StripeEvent.objects.get(id=warning.id).outcome == StripeEvent.Outcome.APPLIED
    assert len(fraud_embeds(order)) == 1


def test_a_warning_finds_its_order_by_the_charge_alone(client, order):
    """Stripe's example names only the charge."""
    pay(client, order)
    send(client, order, "refund.created", refund_obj(order, "re_part", 100, "pending"))
    obj = fraud_warning_obj(order, payment_intent=None)

    stored = deliver(client, make_event("radar.early_fraud_warning.created", obj))

    assert stored.order_id == order.pk
    assert stored.outcome == StripeEvent.Outcome.APPLIED


def test_a_review_holds_the_keys_until_it_is_approved(client, order, sent):
    pay(client, order)

    send(client, order, "review.opened", review_obj(order))
    assert licenses_of(order) == [("suspended", "review")]
    assert order.review_hold is True
    assert order.status == "completed"  # the money is taken; only the keys wait

    send(client, order, "review.opened", review_obj(order))  # a duplicate changes nothing
    send(client, order, "review.closed", review_obj(order, closed_reason="approved"))

    assert licenses_of(order) == [("active", "")]
    assert order.review_hold is False
    assert Review.objects.get().closed_reason == "approved"
    assert sent.count("review_changed") == 2
    [embed] = fraud_embeds(order)  # told when it opened; its close shows on /mgmt
    assert embed.embed["title"].startswith("Payment in Radar review")


def test_a_late_review_opened_never_reopens_an_approved_review(client, order):
    pay(client, order)
    closed = review_obj(order, closed_reason="approved")

    send(client, order, "review.closed", closed)
    send(client, order, "review.opened", review_obj(order))

    assert licenses_of(order) == [("active", "")]
    assert Review.objects.get().open is False
    assert len(fraud_embeds(order)) == 1


def test_a_review_opened_before_the_payment_issues_the_keys_held(client, order):
    deliver(client, make_event("review.opened", review_obj(order)))

    pay(client, order)

    assert order.status == "completed"
    assert licenses_of(order) == [("suspended", "review")]


def test_a_review_closed_as_fraud_keeps_the_hold_until_the_refund_revokes(client, order):
    pay(client, order)
    send(client, order, "review.opened", review_obj(order))

    send(client, order, "review.closed", review_obj(order, closed_reason="refunded_as_fraud"))
    assert licenses_of(order) == [("suspended", "review")]

    refund = refund_obj(order, "re_fraud", order.subtotal_cents, reason="fraudulent")
    send(client, order, "refund.created", refund)
    assert order.status == "refunded"
    assert licenses_of(order) == [("revoked", "refund")]


def test_a_review_closed_while_disputed_hands_the_keys_to_the_dispute(client, order):
    from testkit.stripe_objects import dispute_obj

    pay(client, order)
    send(client, order, "review.opened", review_obj(order))
    send(client, order, "charge.dispute.created", dispute_obj(order, "dp_1"))

    send(client, order, "review.closed", review_obj(order, closed_reason="disputed"))

    assert order.status == "disputed"
    assert licenses_of(order) == [("suspended", "dispute")]


def test_a_staff_suspension_is_not_lifted_by_an_approved_review(client, order, staff):
    from licenses import commands as license_commands

    pay(client, order)
    send(client, order, "review.opened", review_obj(order))
    license = License.objects.get(order=order)
    License.objects.filter(pk=license.pk).update(status="active", reason="")
    license_commands.suspend.run(License.objects.get(pk=license.pk), by=staff)

    send(client, order, "review.closed", review_obj(order, closed_reason="approved"))

    assert licenses_of(order) == [("suspended", "staff")]


@pytest.mark.parametrize(
    "event_type,obj",
    [
        ("radar.early_fraud_warning.created", {"actionable": "yes"}),
        ("radar.early_fraud_warning.updated", {"fraud_type": ["misc"]}),
        ("review.opened", {"open": "true"}),
        ("review.closed", {"closed_reason": 7}),
        ("review.opened", {"object": "charge"}),
    ],
)
def test_a_radar_object_stripe_never_sends_is_refused_and_nothing_stored(event_type, obj):
    order = make_order()
    build = fraud_warning_obj if event_type.startswith("radar") else review_obj
    event = make_event(event_type, {**build(order), **obj})
    from testkit.signing import signed_post

    response = signed_post(Client(), event)

    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


def test_a_warning_for_another_livemode_is_kept_and_changes_nothing(client, order):
    pay(client, order)
    stored = deliver(
        client,
        make_event("radar.early_fraud_warning.created", fraud_warning_obj(order), livemode=True),
    )
    order.refresh_from_db()
    assert stored.outcome == StripeEvent.Outcome.LIVEMODE_MISMATCH
    assert order.fraud_type == ""


def test_a_paid_session_and_a_warning_in_one_late_batch_are_told_once(client, order):
    """The warning came first, named the charge only; the payment came with it expanded."""
    deliver(
        client,
        make_event(
            "radar.early_fraud_warning.created", fraud_warning_obj(order, payment_intent=None)
        ),
    )
    deliver(client, make_event("review.opened", review_obj(order, payment_intent=None)))
    session = session_obj(order)
    session["payment_intent"] = {
        "id": f"pi_{order.number}",
        "object": "payment_intent",
        "latest_charge": {"id": f"ch_{order.number}", "object": "charge"},
        "metadata": {},
    }
    send(client, order, "checkout.session.completed", session)

    assert order.fraud_type == "made_with_stolen_card"
    assert order.review_hold is True
    assert licenses_of(order) == [("suspended", "review")]
    assert len(fraud_embeds(order)) == 2  # the warning and the review, once each


def test_the_buyer_is_told_each_held_key_works_once_the_review_approves(client, order):
    from licenses.models import KeyEmail

    pay(client, order)
    send(client, order, "review.opened", review_obj(order))
    assert not KeyEmail.objects.filter(order=order, kind="reinstated").exists()

    approved = make_event("review.closed", review_obj(order, closed_reason="approved"))
    deliver(client, approved)
    deliver(client, {**approved, "id": approved["id"] + "_again"})  # another delivery of it

    [told] = KeyEmail.objects.filter(order=order, kind="reinstated")
    assert "works again" in told.subject
    assert "fraud" not in (told.subject + told.body).lower()
    license = License.objects.get(order=order)
    assert license.key not in told.body  # never the key itself, its ending only


# Measured (the same with 1 or 5 licenses): the event row, the PaymentIntent's lock (PostgreSQL),
# the order's lock, the warning or review row (insert, or read and update), the summary read of
# the order's rows, the facts' UPDATE, the outcome, and what the receivers add (the Discord
# outbox row; a review's hold, one UPDATE, or its release: the held licenses read, two UPDATEs
# and the buyer's notices in one INSERT), with the test's savepoint. review.closed is the most.
RADAR_QUERIES = {"sqlite": 14, "postgresql": 15}


def test_radar_events_take_a_bounded_number_of_queries(client, django_assert_max_num_queries):
    from django.db import connection

    from orders.models import CheckoutSession
    from testkit.signing import signed_post
    from tests.factories import add_item

    order = make_order(quantity=3)
    add_item(order, quantity=2)
    CheckoutSession.objects.filter(order=order).update(amount_cents=order.subtotal_cents)
    pay(client, order)
    steps = [
        ("radar.early_fraud_warning.created", fraud_warning_obj(order)),
        ("radar.early_fraud_warning.updated", fraud_warning_obj(order, actionable=False)),
        ("review.opened", review_obj(order)),
        ("review.closed", review_obj(order, closed_reason="approved")),
    ]
    for kind, obj in steps:
        with django_assert_max_num_queries(RADAR_QUERIES[connection.vendor]):
            assert signed_post(client, make_event(kind, obj)).status_code == 200
    assert licenses_of(order) == [("active", "")] * 5


def test_a_pool_license_held_by_a_review_gets_its_key_when_the_review_approves(client):
    """Keys imported while the review held the waiting license went past it; the approval
    fills it at once instead of waiting for the next import."""
    from licenses.pool import import_keys
    from tests.factories import make_product

    product = make_product(license_kind="pool", slug="pool-game")
    order = make_order(product=product)
    pay(client, order)
    assert licenses_of(order) == [("pending", "")]
    send(client, order, "review.opened", review_obj(order))
    import_keys(product, ["POOL-KEY-1"])
    assert licenses_of(order) == [("suspended", "review")]

    send(client, order, "review.closed", review_obj(order, closed_reason="approved"))

    assert licenses_of(order) == [("active", "")]
    assert License.objects.get(order=order).key == "POOL-KEY-1"
