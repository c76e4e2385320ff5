"""`manage.py stripe_replay_events`: against the fake Stripe server and the offline gateway."""

import io
import time
from datetime import timedelta

import pytest
import time_machine
from django.core.management import CommandError, call_command

from orders import commands as order_commands
from orders.models import Order, Refund, StripeEvent
from orders.offline_events import deliver_due_events
from orders.webhooks import handle_stripe_event
from shop.durations import parse_duration
from testkit.signing import signed_post
from tests.factories import make_product
from tests.mgmt_support import staff_member

pytestmark = pytest.mark.django_db

DAY = 24 * 3600


def replay(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("stripe_replay_events", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def buy(client, product=None, email="ada@example.com"):
    response = client.post(f"/checkout/{(product or make_product()).slug}/", {"email": email})
    assert response.status_code == 303
    return Order.objects.get(email=email)


def listing_requests(fake_stripe):
    return [r.form for r in fake_stripe.requests_to("GET", "/v1/events")]


# Against Stripe (the fake server).


def test_it_replays_the_events_stripe_could_not_deliver(client, fake_stripe):
    order = buy(client)
    fake_stripe.pay(order.stripe_session_id)
    completed = fake_stripe.events[-1]

    out, _ = replay("--since", "3d")

    order.refresh_from_db()
    assert order.status == "completed"
    assert order.paid_source == completed["id"]
    assert dict(StripeEvent.objects.values_list("type", "outcome")) == {
        "payment_intent.succeeded": "unhandled",
        "charge.succeeded": "unhandled",
        "checkout.session.completed": "applied",
    }
    assert "listed 3 event(s) since 3d: 0 already stored, 3 to replay" in out
    assert "replayed 3 event(s)" in out
    assert "  applied: 1\n" in out
    assert "  unhandled: 2\n" in out


def test_it_asks_for_undelivered_events_first_then_for_all_since_then(client, fake_stripe):
    since = int(time.time()) - 3 * DAY

    replay("--since", "3d")

    undelivered, everything = listing_requests(fake_stripe)
    assert undelivered["delivery_success"] == "false"
    assert "delivery_success" not in everything
    assert abs(int(undelivered["created[gte]"]) - since) <= 2
    assert everything["created[gte]"] == undelivered["created[gte]"]


def test_running_it_twice_replays_nothing_the_second_time(client, fake_stripe):
    order = buy(client)
    fake_stripe.pay(order.stripe_session_id)
    replay("--since", "3d")
    transitions = order.transitions.count()

    out, _ = replay("--since", "3d")

    assert "listed 3 event(s) since 3d: 3 already stored, 0 to replay" in out
    assert "replayed 0 event(s)" in out
    assert StripeEvent.objects.count() == 3
    assert order.transitions.count() == transitions


def test_it_skips_events_the_webhook_stored_even_if_stripe_counts_them_undelivered(
    client, fake_stripe
):
    order = buy(client)
    fake_stripe.pay(order.stripe_session_id)
    assert signed_post(client, fake_stripe.events[-1]).status_code == 200  # Stripe timed out

    out, _ = replay("--since", "3d")

    assert "1 already stored, 2 to replay" in out
    assert StripeEvent.objects.get(id=fake_stripe.events[-1]["id"]).outcome == "applied"
    assert order.transitions.filter(to_status="completed").count() == 1


def test_it_lists_every_event_newer_than_the_newest_stored_one(client, fake_stripe):
    now = int(time.time())
    stored = fake_stripe.emit("customer.created", {"id": "cus_1"}, created=now - 3600)
    handle_stripe_event(stored)
    older = fake_stripe.emit("customer.created", {"id": "cus_2"}, created=now - 7200)
    newer = fake_stripe.emit("customer.created", {"id": "cus_3"}, created=now - 60)
    # Stripe delivered these, but to another server: only the listing since our newest finds one.
    fake_stripe.mark_delivered(stored["id"], older["id"], newer["id"])

    out, _ = replay("--since", "1d")

    assert listing_requests(fake_stripe)[1]["created[gte]"] == str(now - 3600)
    assert StripeEvent.objects.filter(id=newer["id"]).exists()
    assert not StripeEvent.objects.filter(id=older["id"]).exists()
    assert "listed 2 event(s) since 1d: 1 already stored, 1 to replay" in out


def test_the_listing_since_the_newest_stored_event_never_reaches_back_before_since(
    client, fake_stripe
):
    handle_stripe_event(
        fake_stripe.emit("customer.created", {"id": "cus_1"}, created=int(time.time()) - 9 * DAY)
    )

    replay("--since", "12h")

    for form in listing_requests(fake_stripe):
        assert abs(int(form["created[gte]"]) - (int(time.time()) - 12 * 3600)) <= 2


def test_a_dry_run_lists_what_it_would_replay_and_stores_nothing(client, fake_stripe):
    order = buy(client)
    fake_stripe.pay(order.stripe_session_id)

    out, _ = replay("--since", "90m", "--dry-run")

    assert "0 already stored, 3 to replay" in out
    assert f"would replay {fake_stripe.events[-1]['id']} checkout.session.completed" in out
    assert not StripeEvent.objects.exists()
    order.refresh_from_db()
    assert order.status == "pending"


def test_a_staff_refund_replays_as_a_duplicate_fact(client, fake_stripe):
    order = buy(client)
    fake_stripe.pay(order.stripe_session_id)
    client.get(f"/checkout/success/?session_id={order.stripe_session_id}")
    order.refresh_from_db()
    staff = staff_member("boss@example.com", role="Finance")
    refund = order_commands.refund.run(order, by=staff, amount_cents=1000)

    replay("--since", "3d")

    assert Refund.objects.get() == refund
    assert StripeEvent.objects.get(type="refund.created").outcome == "no_change"
    order.refresh_from_db()
    assert order.status == "completed"
    assert order.charge_amount_refunded_cents == 1000


def test_an_event_that_fails_stays_unstored_for_the_next_run_and_the_rest_are_replayed(
    client, fake_stripe
):
    order = buy(client)
    fake_stripe.pay(order.stripe_session_id)
    replay("--since", "3d")
    intent = fake_stripe.sessions[order.stripe_session_id]["payment_intent"]
    broken = {"id": "re_1", "object": "refund", "payment_intent": intent}  # no amount
    broken = fake_stripe.emit("refund.created", broken)
    fine = fake_stripe.emit("customer.created", {"id": "cus_1", "object": "customer"})

    for _ in range(2):
        with pytest.raises(CommandError, match=r"1 event\(s\) failed"):
            replay("--since", "3d")

    assert not StripeEvent.objects.filter(id=broken["id"]).exists()
    assert StripeEvent.objects.get(id=fine["id"]).outcome == "unhandled"
    order.refresh_from_db()
    assert order.status == "completed"


def test_the_progress_bar_goes_to_stderr(client, fake_stripe):
    order = buy(client)
    fake_stripe.pay(order.stripe_session_id)

    out, err = replay("--since", "3d")

    assert "replaying" in err
    assert "3/3" in err
    assert "3/3" not in out


def test_a_stripe_outage_while_listing_is_a_command_error_without_the_key(fake_stripe):
    fake_stripe.fail_next("api_error", times=2)

    with pytest.raises(CommandError) as failed:
        replay("--since", "3d")

    assert "The payment provider is having trouble" in str(failed.value)
    assert "sk_test_fake" not in str(failed.value)


# Durations.


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90m", timedelta(minutes=90)), ("12h", timedelta(hours=12)), ("3d", timedelta(days=3))],
)
def test_durations_are_minutes_hours_or_days(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["3", "3w", "d", "-3d", "0h", "1.5h", "3 days", ""])
def test_a_bad_duration_is_rejected(text):
    with pytest.raises(CommandError, match="90m, 12h or 3d"):
        replay(f"--since={text}")


# Against the offline gateway (no STRIPE_SECRET_KEY): its events wait until delivered, because
# these tests run inside a transaction that never commits.


def press(client, order, action):
    return client.post(f"/test-gateway/checkout/{order.stripe_session_id}/", {"action": action})


def test_it_replays_offline_events_that_were_never_delivered(client):
    order = buy(client)
    press(client, order, "pay")
    assert not StripeEvent.objects.exists()

    out, _ = replay("--since", "3d")

    order.refresh_from_db()
    assert order.status == "completed"
    assert StripeEvent.objects.get().type == "checkout.session.completed"
    assert "replayed 1 event(s)" in out


def test_offline_events_the_worker_delivered_are_not_replayed(client):
    order = buy(client)
    press(client, order, "pay")
    assert deliver_due_events() == 1

    out, _ = replay("--since", "3d")

    assert "listed 1 event(s) since 3d: 1 already stored, 0 to replay" in out


def test_a_delayed_offline_payment_is_not_replayed_before_it_is_due(client, settings):
    settings.TEST_GATEWAY_DELAY = 600
    order = buy(client)
    press(client, order, "delayed_success")

    replay("--since", "3d")

    order.refresh_from_db()
    assert order.status == "pending"
    assert order.async_payment_pending
    with time_machine.travel(time.time() + 601):
        replay("--since", "3d")
    order.refresh_from_db()
    assert order.status == "completed"
