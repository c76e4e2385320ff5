"""Compact mode (issue 22, DESIGN "Discord notifications"): a destination that chooses it gets one
message per order, edited in place as the order moves, through the same worker, limits and
guarantees as every-event destinations. Against the fake Discord, which edits as Discord does."""

import threading
import time
from collections import Counter
from io import StringIO

import pytest
import requests
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications.admin import DestinationForm
from notifications.compact import HISTORY, ORDER_EVENTS, compact_embed
from notifications.discord import Answer
from notifications.discord import _read as read_answer
from notifications.embeds import LIMITS, MESSAGE_TOTAL, embed_size, order_embed
from notifications.events import COLOURS, Event
from notifications.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Destination,
    DestinationMode,
    GlobalRateLimit,
    Notification,
    OrderMessage,
)
from notifications.outbox import enqueue, resend
from notifications.worker import claim, deliver_due, deliver_one
from orders.checkout import place_order, start_checkout
from orders.models import Order
from orders.webhooks import handle_stripe_event
from testkit.fake_discord import validation_errors
from testkit.stripe_objects import make_event, session_obj
from tests.factories import make_order, make_product
from tests.test_discord_delivery import deliver_all

pytestmark = pytest.mark.django_db(transaction=True)

PENDING, SENT, DEAD = DeliveryStatus.PENDING, DeliveryStatus.SENT, DeliveryStatus.DEAD
COMPACT = DestinationMode.COMPACT


def compact(fake, name: str = "orders", **fields) -> Destination:
    return fake.destination(name, mode=COMPACT, **fields)


def tell(order: Order, event: str = Event.ORDER_REFUNDED, extra=()) -> Notification:
    """An event of `order`, written to the outbox as its receiver would."""
    return enqueue(event, order_embed(event, order, list(extra)), order=order)


def history(embed: dict) -> str:
    return next(f["value"] for f in embed["fields"] if f["name"] == HISTORY)


def shown(fake, destination: Destination) -> list[dict]:
    """The one embed of each message the destination's channel shows now, oldest first."""
    messages = fake.channel(destination.webhook_id)
    assert all(len(m.embeds) == 1 for m in messages)
    return [m.embeds[0] for m in messages]


def sent_by_edit(destination: Destination) -> list[bool]:
    return list(destination.deliveries.order_by("id").values_list("edited", flat=True))


def codes(notification: Notification) -> list[int | None]:
    delivery = notification.deliveries.get()
    return list(delivery.attempt_log.order_by("id").values_list("status_code", flat=True))


# One message per order.


def test_a_card_sale_in_compact_mode_is_one_message_edited_twice(fake_discord):
    destination = compact(fake_discord)
    product = make_product(name="Tunewright")

    order = place_order(product=product, quantity=1, email="ada@example.com")
    deliver_all()
    start_checkout(order)
    deliver_all()
    order.refresh_from_db()
    handle_stripe_event(make_event("checkout.session.completed", session_obj(order)))
    deliver_all()

    [message] = fake_discord.messages()
    assert len(fake_discord.edits(message.message_id)) == 2
    [embed] = shown(fake_discord, destination)
    assert embed["title"] == f"Order completed: order {order.number}"
    assert embed["color"] == COLOURS[Event.ORDER_COMPLETED]
    lines = history(embed).splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "Order pending",
        "Checkout started",
        "Order completed",
    ]
    assert destination.deliveries.filter(status=SENT).count() == 3
    assert set(destination.deliveries.values_list("message_id", flat=True)) == {message.message_id}
    assert sent_by_edit(destination) == [False, True, True]
    assert OrderMessage.objects.get(order=order, destination=destination).message_id == (
        message.message_id
    )
    assert {str(r.allowed_mentions) for r in fake_discord.requests} == {"{'parse': []}"}
    assert fake_discord.violations() == []


def test_events_of_two_orders_make_two_messages_each_edited_with_its_own_order(fake_discord):
    first, second = make_order(), make_order()  # before the destination: their events stay put
    destination = compact(fake_discord)
    for order in (first, second):
        tell(order, Event.ORDER_PENDING)
    deliver_all()
    for order in (second, first):
        tell(order, Event.ORDER_COMPLETED)
    deliver_all()

    assert len(fake_discord.messages()) == 2
    assert len(fake_discord.edits()) == 2
    assert [e["title"] for e in shown(fake_discord, destination)] == [
        f"Order completed: order {first.number}",
        f"Order completed: order {second.number}",
    ]
    assert OrderMessage.objects.filter(destination=destination).count() == 2


def test_events_waiting_together_go_as_one_message_showing_the_latest(fake_discord):
    order = make_order()
    destination = compact(fake_discord)
    for event in (Event.CHECKOUT_STARTED, Event.PAYMENT_FAILED, Event.ORDER_COMPLETED):
        tell(order, event)

    assert deliver_due() == 1

    [request] = fake_discord.requests
    assert request.method == "POST"
    assert request.embeds[0]["title"] == f"Order completed: order {order.number}"
    assert len(history(request.embeds[0]).splitlines()) == 3
    assert destination.deliveries.filter(status=SENT).count() == 3
    assert set(destination.deliveries.values_list("attempts", flat=True)) == {1}


def test_events_without_an_order_and_test_messages_are_messages_of_their_own(fake_discord):
    compact(fake_discord)
    enqueue(Event.LICENSE_STOCK_LOW, {"title": "Stock low", "color": 0xE74C3C})
    order = make_order()
    tell(order, Event.ORDER_COMPLETED)
    deliver_all()

    call_command("send_test_notification", "--destination", "orders", stdout=StringIO())
    call_command("send_test_notification", "--destination", "orders", stdout=StringIO())

    assert [r.method for r in fake_discord.requests] == ["POST"] * 4
    titles = [m.embeds[0]["title"] for m in fake_discord.messages()]
    assert titles[:2] == ["Stock low", f"Order completed: order {order.number}"]
    assert titles[2:] == ["Test notification from License Shop"] * 2
    assert history(fake_discord.messages()[1].embeds[0]).count("\n") == 1  # both order events
    assert not Delivery.objects.filter(notification__event=Event.TEST, edited=True).exists()


def test_every_event_about_an_order_folds_into_its_message_and_only_those():
    """An event added later (a refund on its way, a fraud warning) moves its order's message
    unless it is about a license or a test: nothing has to remember to list it."""
    own = {e for e in Event if e not in ORDER_EVENTS}
    assert own == {Event.LICENSE_STOCK_LOW, Event.LICENSE_ACTIVATION_LIMIT_REACHED, Event.TEST}


def test_a_refund_on_its_way_then_made_edits_the_orders_message(fake_discord):
    order = make_order()  # before the destination: its own events stay put
    destination = compact(fake_discord)
    for event in (Event.ORDER_COMPLETED, Event.ORDER_REFUND_PENDING, Event.ORDER_REFUNDED):
        tell(order, event)
        deliver_all()

    [message] = fake_discord.messages()
    assert len(fake_discord.edits(message.message_id)) == 2
    [embed] = shown(fake_discord, destination)
    assert embed["color"] == COLOURS[Event.ORDER_REFUNDED]
    assert len(history(embed).splitlines()) == 3
    assert sent_by_edit(destination) == [False, True, True]


# Same limits, same guarantees.


def test_a_burst_while_rate_limited_ends_in_one_edit_showing_the_final_state(fake_discord):
    destination = compact(fake_discord)
    order = make_order()
    deliver_all()
    fake_discord.throttle_next(retry_after=0.3)
    burst = [tell(order, Event.ORDER_REFUNDED, [("Refund", f"refund {n}")]) for n in range(6)]

    deliver_all()

    [message] = fake_discord.messages()
    [edit] = fake_discord.edits(message.message_id)
    assert [r.status for r in fake_discord.requests] == [200, 429, 200]
    fields = {f["name"]: f["value"] for f in edit.embeds[0]["fields"]}
    assert fields["Refund"] == "refund 5"
    assert history(edit.embeds[0]).count("Order refunded") == 6
    assert all(codes(n) == [429, 200] for n in burst)
    assert destination.deliveries.filter(status=SENT).count() == 7
    assert set(
        d.attempt_log.get(status_code=200).batch_size for d in destination.deliveries.all()[1:]
    ) == {6}
    assert fake_discord.violations() == []
    assert fake_discord.most_429s_in_one_window() == 1


@pytest.mark.parametrize("limit", ["user", "global"])
def test_a_429_on_an_edit_is_waited_out_as_on_a_post(fake_discord, limit):
    destination = compact(fake_discord)
    order = make_order()
    deliver_all()
    if limit == "user":
        fake_discord.throttle_next(retry_after=0.3)
    else:
        fake_discord.limit_globally(retry_after=0.3)
    completed = tell(order, Event.ORDER_COMPLETED)

    deliver_all()

    assert [(r.method, r.status) for r in fake_discord.requests[1:]] == [
        ("PATCH", 429),
        ("PATCH", 200),
    ]
    assert fake_discord.rate_limited()[0].scope == limit
    assert codes(completed) == [429, 200]
    assert shown(fake_discord, destination)[0]["title"].startswith("Order completed")
    assert fake_discord.violations() == []


def test_many_orders_edited_at_once_keep_within_the_bucket_and_the_channel(fake_discord, settings):
    fake_discord.channel_limit, fake_discord.channel_window = 8, 1.0
    settings.DISCORD_CHANNEL_LIMIT, settings.DISCORD_CHANNEL_WINDOW = 8, 1.0
    orders = [make_order() for _ in range(12)]
    destination = compact(fake_discord)
    for order in orders:
        tell(order, Event.ORDER_PENDING)
    deliver_all()
    for order in orders:
        tell(order, Event.ORDER_COMPLETED)

    deliver_all()

    assert len(fake_discord.messages()) == 12
    assert len(fake_discord.edits()) == 12
    assert {e["title"].split(":")[0] for e in shown(fake_discord, destination)} == {
        "Order completed"
    }
    assert fake_discord.violations() == []
    assert fake_discord.rate_limited() == []


def test_a_failed_edit_is_retried_with_backoff_and_nothing_is_lost(fake_discord):
    destination = compact(fake_discord)
    order = make_order()
    deliver_all()
    fake_discord.fail_next("500")
    fake_discord.fail_next("drop")
    completed = tell(order, Event.ORDER_COMPLETED)

    deliver_all()

    assert codes(completed) == [500, None, 200]
    assert len(fake_discord.messages()) == 1
    assert shown(fake_discord, destination)[0]["title"].startswith("Order completed")


def test_a_deleted_message_is_posted_again_as_a_new_one(fake_discord):
    destination = compact(fake_discord)
    order = make_order()
    deliver_all()
    [first] = fake_discord.messages()
    fake_discord.delete_message(first.message_id)
    completed = tell(order, Event.ORDER_COMPLETED)

    deliver_all()

    destination.refresh_from_db()
    assert destination.enabled
    assert [(r.method, r.status) for r in fake_discord.requests] == [
        ("POST", 200),
        ("PATCH", 404),
        ("POST", 200),
    ]
    [embed] = shown(fake_discord, destination)
    assert embed["title"] == f"Order completed: order {order.number}"
    assert len(history(embed).splitlines()) == 2
    second = fake_discord.messages()[1]
    assert OrderMessage.objects.get(order=order).message_id == second.message_id
    assert codes(completed) == [404, 200]
    assert completed.deliveries.get().message_id == second.message_id


def test_a_deleted_webhook_still_disables_the_destination_and_keeps_the_messages(fake_discord):
    destination = compact(fake_discord)
    order = make_order()
    deliver_all()
    [message] = fake_discord.messages()
    fake_discord.delete_webhook(destination.webhook_id)
    tell(order, Event.ORDER_COMPLETED)

    deliver_all()

    destination.refresh_from_db()
    assert not destination.enabled
    assert "10015" in destination.disabled_reason
    assert destination.deliveries.filter(status=PENDING).count() == 1
    assert OrderMessage.objects.get(order=order).message_id == message.message_id

    fake_discord.add_webhook(destination.webhook_id, destination.token)  # staff fix it
    Destination.objects.filter(pk=destination.pk).update(enabled=True, disabled_reason="")
    deliver_all()
    assert len(fake_discord.messages()) == 1
    assert shown(fake_discord, destination)[0]["title"].startswith("Order completed")


def test_a_new_webhook_or_thread_starts_a_new_message_for_the_order(fake_discord):
    destination = compact(fake_discord)
    order = make_order()
    deliver_all()
    moved = fake_discord.destination("moved")  # another webhook, as staff would paste it
    Destination.objects.filter(pk=destination.pk).update(
        webhook_id=moved.webhook_id, token=moved.token
    )
    moved.delete()
    tell(order, Event.ORDER_COMPLETED)

    deliver_all()

    assert [(r.method, r.status) for r in fake_discord.requests] == [("POST", 200)] * 2
    assert OrderMessage.objects.get(order=order).webhook_id == moved.webhook_id


def test_an_orders_message_in_a_thread_is_edited_in_that_thread(fake_discord):
    destination = compact(fake_discord, thread_id="987654321098765432")
    order = make_order()
    deliver_all()
    tell(order, Event.ORDER_COMPLETED)

    deliver_all()

    assert [(r.method, r.status, r.thread_id) for r in fake_discord.requests] == [
        ("POST", 200, "987654321098765432"),
        ("PATCH", 200, "987654321098765432"),
    ]
    assert OrderMessage.objects.get(order=order).thread_id == destination.thread_id


def test_a_failed_edit_never_shows_the_token(fake_discord, settings, caplog):
    destination = compact(fake_discord)
    order = make_order()
    deliver_all()
    settings.DISCORD_API_BASE = "http://127.0.0.1:9/api/v10"  # nothing listens: a network error
    tell(order, Event.ORDER_COMPLETED)

    assert deliver_one("test")

    [attempt] = DeliveryAttempt.objects.filter(edit=True)
    assert "ConnectionError" in attempt.error
    assert "/messages/" in attempt.error  # the edit's URL, its token hidden
    destination.refresh_from_db()
    for text in (attempt.error, destination.last_error, caplog.text):
        assert destination.token not in text


def test_an_hour_old_message_edited_past_discords_limit_waits_and_is_no_ban(fake_discord):
    fake_discord.old_edit_window = 0.5  # Discord's is 6 seconds
    destination = compact(fake_discord)
    orders = [make_order() for _ in range(4)]
    deliver_all()
    for message in fake_discord.messages():
        fake_discord.age_message(message.message_id, 3601)
    for order in orders:
        tell(order, Event.ORDER_REFUNDED)

    deliver_all()

    [limited] = fake_discord.rate_limited()
    assert limited.method == "PATCH"
    assert len(fake_discord.edits()) == 4
    destination.refresh_from_db()
    assert destination.enabled
    assert not GlobalRateLimit.objects.filter(banned_since__isnull=False).exists()
    assert not Delivery.objects.exclude(status=SENT).exists()
    assert fake_discord.violations() == []


def test_a_dead_edit_sent_again_edits_the_orders_message(fake_discord, settings):
    destination = compact(fake_discord)
    order = make_order()
    deliver_all()
    settings.DISCORD_MAX_AGE = 0  # the next failure is past its age
    fake_discord.fail_next("502")
    completed = tell(order, Event.ORDER_COMPLETED)
    deliver_all()
    delivery = completed.deliveries.get()
    assert delivery.status == DEAD

    settings.DISCORD_MAX_AGE = 86400
    resend(Delivery.objects.filter(pk=delivery.pk))
    deliver_all()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.edited) == (SENT, True)
    assert len(fake_discord.messages()) == 1
    assert shown(fake_discord, destination)[0]["title"].startswith("Order completed")


def discord_answer(status: int, body: bytes, **headers: str) -> requests.Response:
    response = requests.Response()
    response.status_code, response._content = status, body
    response.headers.update(headers)
    return response


def test_a_429_with_a_discord_error_code_is_a_limit_and_a_bare_one_a_ban():
    edits = discord_answer(429, b'{"message": "Maximum number of edits", "code": 30046}')
    cloudflare = discord_answer(429, b'{"message": "You are being blocked", "code": 0}')

    limited, banned = (read_answer(r, "token") for r in (edits, cloudflare))

    assert (limited.banned, limited.retry_after, limited.error_code) == (False, 1.0, 30046)
    assert banned.banned


@pytest.mark.parametrize(
    ("status", "code", "gone", "problem"),
    [(404, 10008, True, ""), (404, 10015, False, "deleted"), (404, None, False, "deleted")],
)
def test_an_unknown_message_is_told_apart_from_an_unknown_webhook(status, code, gone, problem):
    answer = Answer(status=status, error_code=code)

    assert answer.message_gone == gone
    assert (problem in answer.destination_problem) and bool(answer.destination_problem) == (
        not gone
    )


# What the message shows, within Discord's limits.


def test_an_oversize_history_is_shortened_within_discords_limits_and_never_refused(
    fake_discord,
):
    name = ("@everyone 🎉 <@&1234> " * 500)[:10_000]
    destination = compact(fake_discord)
    order = make_order()
    order.email = name  # in memory: customer text longer than any column could hold
    for n in range(80):
        tell(order, Event.ORDER_REFUNDED, [("Refund reason", name), ("Refund", f"refund {n}")])

    deliver_all()
    tell(order, Event.ORDER_DISPUTED, [("Dispute reason", name)])
    deliver_all()

    assert {r.status for r in fake_discord.requests} == {200}
    for request in fake_discord.requests:
        assert validation_errors(request.body) is None
        assert request.pings == []
    [embed] = shown(fake_discord, destination)
    assert embed_size(embed) <= MESSAGE_TOTAL
    lines = history(embed).splitlines()
    assert len(history(embed)) <= LIMITS["field_value"]
    assert lines[0].endswith("Order pending")  # the first event, then the latest ones
    assert "earlier" in lines[1]
    assert lines[-1].endswith("Payment disputed")
    assert embed["title"] == f"Payment disputed: order {order.number}"
    assert destination.deliveries.filter(status=SENT).count() == 82


def test_the_compact_embed_keeps_the_latest_events_when_the_history_is_long(settings):
    settings.SITE_URL = "https://shop.example.com"
    destination = Destination.objects.create(
        name="d", webhook_id="1" * 18, token="t" * 68, mode=COMPACT
    )
    order = make_order()
    for n in range(200):
        tell(order, Event.ORDER_REFUNDED, [("Refund", f"refund {n}")])

    embed = compact_embed(destination, order.pk)

    assert embed["url"] == f"https://shop.example.com/mgmt/orders/{order.number}/"
    lines = history(embed).splitlines()
    assert len(history(embed)) <= LIMITS["field_value"]
    assert lines[0].endswith("Order pending")
    assert lines[1].startswith("… ") and "earlier" in lines[1]
    hidden = int(lines[1].split()[1])
    assert hidden + len(lines) - 1 == 201  # every event is counted, shown or not
    assert validation_errors({"embeds": [embed]}) is None


def test_claiming_an_orders_message_costs_the_same_queries_however_long_its_history(
    fake_discord,
):
    destination = compact(fake_discord)
    short, long = make_order(), make_order()
    for _ in range(60):
        tell(long)
    deliver_all()
    counts = []
    for order in (short, long):
        tell(order, Event.ORDER_COMPLETED)
        with CaptureQueriesContext(connection) as queries:
            claimed = claim("test")
        assert claimed.order_message.order_id == order.pk
        assert claimed.editing
        Destination.objects.filter(pk=destination.pk).update(lease_owner="", lease_until=None)
        Delivery.objects.filter(pk__in=[d.pk for d in claimed.deliveries]).update(status=SENT)
        counts.append(len(queries))

    assert counts[0] == counts[1]


# Staff see the mode and the edits.


def test_mgmt_shows_each_destinations_mode_and_an_edit_as_such(fake_discord, client, staff):
    client.force_login(staff)
    stream = fake_discord.destination("stream")
    folded = compact(fake_discord, "folded")
    order = make_order()
    deliver_all()
    tell(order, Event.ORDER_COMPLETED)
    deliver_all()

    page = client.get("/mgmt/notifications/")

    modes = {d.name: d.get_mode_display() for d, _ in page.context["destinations"]}
    assert modes == {"folded": "compact (one message per order)", "stream": "every event"}
    html = page.content.decode()
    assert ">compact (one message per order)</td>" in html
    edit = Delivery.objects.get(destination=folded, edited=True)
    assert edit.notification.event == Event.ORDER_COMPLETED
    assert html.count("as an edit of the order's message") == 1
    order_page = client.get(f"/mgmt/orders/{order.number}/").content.decode()
    assert order_page.count("as an edit of the order's message") == 1
    assert not stream.deliveries.filter(edited=True).exists()
    assert edit.attempt_log.get().edit
    assert folded.token not in html


def test_sending_an_orders_event_again_tells_staff_it_edits_the_orders_message(
    fake_discord, client, staff
):
    client.force_login(staff)
    folded = compact(fake_discord, "folded")
    stream = fake_discord.destination("stream")
    make_order()
    deliver_all()

    folded_page, stream_page = (
        client.get(f"/mgmt/deliveries/{d.deliveries.get().pk}/resend/").content.decode()
        for d in (folded, stream)
    )

    assert "edits the order&#x27;s message" in folded_page
    assert "as new" in stream_page


# Every-event destinations beside compact ones.


def test_an_every_event_destination_beside_a_compact_one_gets_every_event(fake_discord):
    stream = fake_discord.destination("stream")
    folded = compact(fake_discord, "folded")
    order = make_order()
    deliver_all()
    tell(order, Event.ORDER_COMPLETED)
    deliver_all()
    tell(order, Event.ORDER_REFUNDED)
    deliver_all()

    assert len(fake_discord.messages(stream.webhook_id)) == 3
    assert len(fake_discord.messages(folded.webhook_id)) == 1
    assert [r.method for r in fake_discord.requests if r.webhook_id == stream.webhook_id] == [
        "POST"
    ] * 3
    assert not stream.deliveries.filter(edited=True).exists()
    assert not OrderMessage.objects.filter(destination=stream).exists()


def test_a_destination_switched_back_to_every_event_posts_each_event_again(fake_discord):
    destination = compact(fake_discord)
    order = make_order()
    deliver_all()
    Destination.objects.filter(pk=destination.pk).update(mode=DestinationMode.EVERY_EVENT)
    tell(order, Event.ORDER_COMPLETED)
    tell(order, Event.ORDER_REFUNDED)

    deliver_all()

    assert [r.method for r in fake_discord.requests] == ["POST", "POST"]
    assert [len(m.sent_embeds) for m in fake_discord.messages()] == [1, 2]


def test_a_new_destination_takes_every_event_unless_staff_choose_compact(fake_discord):
    destination = fake_discord.destination("orders")
    assert destination.mode == DestinationMode.EVERY_EVENT

    data = {"name": "orders", "events": ["order.completed"], "enabled": "on", "webhook_url": ""}
    form = DestinationForm({**data, "mode": COMPACT}, instance=destination)
    assert form.is_valid(), form.errors
    form.save()
    destination.refresh_from_db()
    assert destination.mode == COMPACT

    form = DestinationForm(data, instance=destination)  # a form posted without it keeps it
    assert form.is_valid(), form.errors
    form.save()
    destination.refresh_from_db()
    assert destination.mode == COMPACT


# Workers.


def add_events(orders: list[Order], rounds: int) -> None:
    try:
        for n in range(rounds):
            for order in orders:
                tell(order, Event.ORDER_REFUNDED, [("Refund", f"refund {n}")])
    finally:
        connection.close()


def work(name: str, producing: threading.Thread, sent: Counter, errors: list) -> None:
    """Deliver until the producer is done and nothing is left."""
    try:
        backlog = Delivery.objects.filter(status=PENDING)
        while producing.is_alive() or backlog.exists():
            count = deliver_due(name)
            sent[name] += count
            if not count:
                time.sleep(0.005)
    except Exception as error:  # reported by the test, in the main thread
        errors.append(error)
    finally:
        connection.close()


@pytest.mark.postgres
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="threads share SQLite's in-memory test database, where writers meet 'table is locked'",
)
def test_two_workers_never_edit_one_message_at_once(fake_discord):
    destinations = [compact(fake_discord, f"dest {n}") for n in range(3)]
    orders = [make_order() for _ in range(6)]
    deliver_all()  # one message per order and destination, to be edited
    sent, errors = Counter(), []
    fake_discord.fail_next("slow", times=6, seconds=0.2)  # both workers have work in hand

    producing = threading.Thread(target=add_events, args=(orders, 4))
    workers = [
        threading.Thread(target=work, args=(name, producing, sent, errors))
        for name in ("one", "two")
    ]
    producing.start()
    for thread in workers:
        thread.start()
    for thread in [producing, *workers]:
        thread.join(timeout=60)

    assert errors == []
    assert sent["one"] and sent["two"]  # both workers took part
    assert fake_discord.edits()
    assert fake_discord.overlapping_edits() == []
    assert len(fake_discord.messages()) == 18  # never a second message for an order
    for destination in destinations:
        for embed in shown(fake_discord, destination):
            assert {f["name"]: f["value"] for f in embed["fields"]}["Refund"] == "refund 3"
    assert Delivery.objects.filter(status=SENT).count() == 18 * 5
    assert fake_discord.violations() == []


def test_deliver_one_is_one_request_whether_it_posts_or_edits(fake_discord):
    compact(fake_discord)
    order = make_order()
    assert deliver_one("test")
    tell(order, Event.ORDER_COMPLETED)

    assert deliver_one("test")

    assert [r.method for r in fake_discord.requests] == ["POST", "PATCH"]
