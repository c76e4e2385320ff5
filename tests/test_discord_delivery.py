"""Delivery to Discord through the real worker, against a fake Discord on 127.0.0.1 that keeps
Discord's limits and flags any request sent while its sender had been told to wait (DESIGN,
"Discord notifications")."""

import itertools
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from io import StringIO

import pytest
import requests
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from notifications import ip_limits, worker
from notifications.admin import DestinationForm
from notifications.discord import Answer, parse_webhook_url
from notifications.embeds import for_message, order_embed, order_link
from notifications.events import Event
from notifications.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Destination,
    GlobalRateLimit,
    Notification,
)
from notifications.outbox import enqueue, resend
from notifications.worker import deliver_due, deliver_one
from orders.models import Order
from testkit.fake_discord import validation_errors
from tests.factories import make_order, make_product
from workers.models import Heartbeat

pytestmark = pytest.mark.django_db(transaction=True)

PENDING, SENT, DEAD = DeliveryStatus.PENDING, DeliveryStatus.SENT, DeliveryStatus.DEAD
POSTGRES_ONLY = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="threads share SQLite's in-memory test database, where writers meet 'table is locked'",
)
SQLITE_ONLY = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="PostgreSQL runs the burst with a producer thread"
)


def notify(title: str, **embed) -> Notification:
    """An order event with a recognisable title, written to the outbox as a receiver would."""
    return enqueue(Event.ORDER_PENDING, {"title": title, "color": 0xF1C40F, **embed})


def deliver_all(worker_name: str = "test", *, timeout: float = 30) -> None:
    """Run the worker until no enabled destination has anything left to send."""
    deadline = time.monotonic() + timeout
    backlog = Delivery.objects.filter(status=PENDING, destination__enabled=True)
    while backlog.exists():
        assert time.monotonic() < deadline, f"still pending: {backlog.count()}"
        if not deliver_due(worker_name):
            time.sleep(0.01)


def titles(fake, destination: Destination) -> list[str]:
    """The embed titles Discord accepted for `destination`, in the order they arrived."""
    return [embed["title"] for embed in fake.embeds(destination.webhook_id)]


# A backlog of 100 events of 10 orders, each order's ten events one after another: every message
# of ten embeds is then one order's, all with the same link.
ORDER_EVENTS = [
    Event.CHECKOUT_STARTED,
    Event.ORDER_PENDING,
    Event.PAYMENT_FAILED,
    Event.ORDER_PENDING,
    Event.CHECKOUT_STARTED,
    Event.ORDER_COMPLETED,
    Event.ORDER_REFUNDED,
    Event.ORDER_DISPUTED,
    Event.ORDER_DISPUTE_CLOSED,
    Event.ORDER_REFUNDED,
]


def make_orders(count: int = 10) -> list[Order]:
    """Orders placed before any destination exists, so that their own notifications stay put."""
    product = make_product()
    return [make_order(product=product) for _ in range(count)]


def order_backlog(orders: list[Order], *, start: int = 0) -> list[Notification]:
    """Ten events per order, numbered from `start` in the order they happen, in the outbox."""
    backlog = []
    for order in orders:
        for event in ORDER_EVENTS:
            number = [("Backlog", str(start + len(backlog)))]
            backlog.append(enqueue(event, order_embed(event, order, number), order=order))
    return backlog


def backlog_number(embed: dict) -> int:
    return int(next(f["value"] for f in embed["fields"] if f["name"] == "Backlog"))


def assert_channel_shows_every_event_once_in_order(
    fake, destination: Destination, backlog: list[Notification]
) -> None:
    """What the channel shows (embeds Discord hides left out): every event once, in order, each
    with its order's link, as the embed's link or in its text."""
    shown = fake.embeds(destination.webhook_id)
    assert [backlog_number(embed) for embed in shown] == list(range(len(backlog)))
    for embed, notification in zip(shown, backlog, strict=True):
        link = order_link(notification.order)
        assert embed.get("url") == link or link in embed.get("description", ""), embed
    assert fake.hidden_embeds() == []
    assert Delivery.objects.filter(destination=destination).exclude(status=SENT).count() == 0
    assert fake.violations() == []


def attempt_codes(delivery: Delivery) -> list[int | None]:
    return list(delivery.attempt_log.order_by("id").values_list("status_code", flat=True))


def assert_token_hidden(destination: Destination, *texts: str) -> None:
    destination.refresh_from_db()
    token = destination.token
    stored = [destination.last_error, destination.disabled_reason, *texts]
    stored += Delivery.objects.values_list("last_error", flat=True)
    stored += DeliveryAttempt.objects.values_list("error", flat=True)
    assert not [text for text in stored if token in text]


# One message.


def test_an_order_event_reaches_discord_as_an_embed_that_pings_nobody(fake_discord):
    destination = fake_discord.destination("orders")
    order = make_order(email="buyer@example.com")

    assert deliver_due() == 1

    [message] = fake_discord.messages()
    [embed] = message.embeds
    assert embed["title"] == f"Order pending: order {order.number}"
    assert {"name": "Customer", "value": "buyer@example.com", "inline": True} in embed["fields"]
    assert message.allowed_mentions == {"parse": []}
    assert message.pings == []
    delivery = Delivery.objects.get(destination=destination)
    assert delivery.status == SENT
    assert delivery.message_id == message.message_id
    assert attempt_codes(delivery) == [200]


def test_a_destination_with_a_thread_posts_into_that_thread(fake_discord):
    fake_discord.destination("orders", thread_id="123456789012345678")
    notify("into the thread")

    deliver_all()

    [message] = fake_discord.messages()
    assert message.thread_id == "123456789012345678"


# A burst.


def order_with_two_events(product) -> None:
    """An order whose two events (pending, then completed) link to the same page."""
    order = make_order(product=product)
    enqueue(Event.ORDER_COMPLETED, order_embed(Event.ORDER_COMPLETED, order), order=order)


def place_orders(product, count: int) -> None:
    try:
        for _ in range(count):
            order_with_two_events(product)
    finally:
        connection.close()


@pytest.mark.parametrize(
    "producer",
    [
        pytest.param("between worker turns", marks=SQLITE_ONLY),
        pytest.param("in its own thread", marks=POSTGRES_ONLY),
    ],
)
def test_a_thousand_events_in_a_burst_arrive_complete_in_order_once_within_every_limit(
    fake_discord, settings, producer
):
    settings.SITE_URL = "https://shop.example.com"  # a link Discord takes as an embed's url
    destination = fake_discord.destination("orders")
    product = make_product()
    # A backlog before the worker starts: however fast this machine is next to the producer,
    # the worker's first message has ten embeds to batch, two per order with the same link.
    for _ in range(50):
        order_with_two_events(product)
    if producer == "in its own thread":
        placing = threading.Thread(target=place_orders, args=(product, 450))
        placing.start()
        while placing.is_alive():
            if not deliver_due("burst"):
                time.sleep(0.005)
        placing.join()
    else:
        for n in range(450):
            order_with_two_events(product)
            if n % 5 == 0:
                deliver_one("burst")
    deliver_all("burst", timeout=60)

    ids = dict(Notification.objects.values_list("embed__title", "id"))
    assert len(ids) == 1000
    received = [ids[title] for title in titles(fake_discord, destination)]
    assert received == sorted(ids.values())  # all of them, each once, in order
    assert Delivery.objects.filter(status=SENT).count() == 1000
    sizes = [len(message.sent_embeds) for message in fake_discord.messages()]
    assert sizes[0] == 10
    assert fake_discord.hidden_embeds() == []  # one embed per message carries an order's url
    for message in fake_discord.messages():
        links = [embed["url"] for embed in message.sent_embeds if "url" in embed]
        assert len(links) == len(set(links))
    assert {json.dumps(r.allowed_mentions) for r in fake_discord.requests} == {'{"parse": []}'}
    assert fake_discord.most_429s_in_one_window() <= 1
    assert fake_discord.violations() == []


def test_a_backlog_goes_out_ten_embeds_per_message(fake_discord):
    destination = fake_discord.destination("orders")
    for n in range(25):
        notify(f"backlog {n}")

    deliver_all()

    assert [len(m.embeds) for m in fake_discord.messages()] == [10, 10, 5]
    assert titles(fake_discord, destination) == [f"backlog {n}" for n in range(25)]
    assert set(DeliveryAttempt.objects.values_list("batch_size", flat=True)) == {10, 5}


def test_two_webhooks_in_one_channel_share_its_hidden_limit_and_lose_nothing(
    fake_discord, settings
):
    fake_discord.channel_limit, fake_discord.channel_window = 4, 1.0
    settings.DISCORD_CHANNEL_LIMIT, settings.DISCORD_CHANNEL_WINDOW = 4, 1.0
    first = fake_discord.destination("first", channel_id="900000000000000001")
    second = fake_discord.destination("second", channel_id="900000000000000001")
    for n in range(8):
        notify(f"large {n}", description="x" * 3500)  # too large to share a message

    deliver_all()

    expected = [f"large {n}" for n in range(8)]
    assert titles(fake_discord, first) == titles(fake_discord, second) == expected
    # An accepted message names its channel: from then on the worker paces the two destinations
    # as one channel. Before its first success a destination cannot know whom it shares with.
    assert set(Destination.objects.values_list("channel_id", flat=True)) == {"900000000000000001"}
    first_success = {
        d.webhook_id: min(
            r.at for r in fake_discord.requests if r.webhook_id == d.webhook_id and r.status == 200
        )
        for d in (first, second)
    }
    assert all(r.at < first_success[r.webhook_id] for r in fake_discord.rate_limited("shared"))
    assert fake_discord.most_429s_in_one_window() <= 1
    assert fake_discord.violations() == []


def test_a_global_rate_limit_holds_every_destination_until_it_ends(fake_discord):
    first, second = fake_discord.destination("first"), fake_discord.destination("second")
    fake_discord.limit_globally(retry_after=0.5)
    for n in range(12):
        notify(f"global {n}")

    deliver_all()

    assert len(fake_discord.rate_limited("global")) == 1
    assert GlobalRateLimit.objects.get().blocked_until is not None
    expected = [f"global {n}" for n in range(12)]
    assert titles(fake_discord, first) == titles(fake_discord, second) == expected
    assert fake_discord.violations() == []


# Outages.


def short_timeouts(fake, settings) -> None:
    """A hang outlasts the worker's timeout, in seconds rather than minutes."""
    settings.DISCORD_TIMEOUT, fake.hang_seconds = 2.0, 3.0


def test_500_502_a_dropped_connection_and_a_hang_are_retried_until_everything_arrives(
    fake_discord, settings
):
    short_timeouts(fake_discord, settings)
    destination = fake_discord.destination("orders")
    for kind in ("500", "502", "drop", "hang"):
        fake_discord.fail_next(kind)
    for n in range(25):
        notify(f"outage {n}")

    deliver_all()

    assert titles(fake_discord, destination) == [f"outage {n}" for n in range(25)]
    assert [len(m.embeds) for m in fake_discord.messages()] == [10, 10, 5]  # retried whole
    first = Delivery.objects.order_by("id").first()
    assert attempt_codes(first) == [500, 502, None, None, 200]
    assert Delivery.objects.filter(status=SENT).count() == 25
    assert fake_discord.violations() == []
    assert_token_hidden(destination)


def test_retries_back_off_exponentially_with_jitter_up_to_the_cap(fake_discord, settings):
    settings.DISCORD_BACKOFF_BASE, settings.DISCORD_BACKOFF_CAP = 10, 25
    fake_discord.destination("orders")
    fake_discord.fail_next("500", times=3)
    notify("backing off")
    delays = []

    start = timezone.now()
    for n in range(1, 4):
        with time_machine.travel(start + timedelta(minutes=n), tick=False):
            before = timezone.now()
            deliver_due()
            delays.append((Delivery.objects.get().next_attempt_at - before).total_seconds())

    assert 5 <= delays[0] <= 10
    assert 10 <= delays[1] <= 20
    assert 12.5 <= delays[2] <= 25  # 40 s, capped at 25
    assert Delivery.objects.get().status == PENDING


def test_a_message_failing_past_its_age_is_dead_and_the_next_one_still_goes(fake_discord, settings):
    destination = fake_discord.destination("orders")
    old = notify("too old")
    Delivery.objects.filter(notification=old).update(
        created_at=timezone.now() - timedelta(seconds=settings.DISCORD_MAX_AGE + 1)
    )
    fake_discord.fail_next("502")
    assert deliver_one("test")
    notify("fresh")

    deliver_all()

    assert Delivery.objects.get(notification=old).status == DEAD
    assert titles(fake_discord, destination) == ["fresh"]
    destination.refresh_from_db()
    assert destination.enabled


# Refusals.


def test_a_deleted_webhook_disables_only_its_destination_and_keeps_its_messages(fake_discord):
    deleted, alive = fake_discord.destination("deleted"), fake_discord.destination("alive")
    fake_discord.delete_webhook(deleted.webhook_id)
    for n in range(5):
        notify(f"event {n}")

    deliver_all()

    deleted.refresh_from_db()
    assert not deleted.enabled
    assert "404" in deleted.disabled_reason
    assert len([r for r in fake_discord.requests if r.webhook_id == deleted.webhook_id]) == 1
    assert deleted.deliveries.filter(status=PENDING).count() == 5
    assert titles(fake_discord, alive) == [f"event {n}" for n in range(5)]
    assert_token_hidden(deleted)

    fake_discord.add_webhook(deleted.webhook_id, deleted.token)  # staff fix it and re-enable
    Destination.objects.filter(pk=deleted.pk).update(enabled=True, disabled_reason="")
    deliver_all()
    assert titles(fake_discord, deleted) == [f"event {n}" for n in range(5)]


def test_a_wrong_token_disables_the_destination_after_one_answer(fake_discord):
    destination = fake_discord.destination("orders")
    Destination.objects.filter(pk=destination.pk).update(token="wrong-" + "t" * 60)
    for n in range(3):
        notify(f"event {n}")

    deliver_all()

    destination.refresh_from_db()
    assert not destination.enabled
    assert "401" in destination.disabled_reason
    assert [r.status for r in fake_discord.requests] == [401]
    assert destination.deliveries.filter(status=PENDING).count() == 3
    assert_token_hidden(destination)


def test_a_refused_embed_is_sent_once_as_the_minimal_fallback_never_as_the_same_body(
    fake_discord,
):
    destination = fake_discord.destination("orders")
    notify("before")
    refused = notify("x" * 300, url="https://shop.example/mgmt/orders/ABC/")
    notify("after")

    deliver_all()

    bodies = [json.dumps(r.body, sort_keys=True) for r in fake_discord.requests]
    assert len(bodies) == len(set(bodies))  # nothing was sent twice
    assert [r.status for r in fake_discord.requests] == [400, 200, 400, 200, 200]
    assert titles(fake_discord, destination) == ["before", "x" * 199 + "…", "after"]
    fallback = fake_discord.messages()[1].embeds[0]
    assert "url" not in fallback  # Discord may have refused the embed for its link
    assert "https://shop.example/mgmt/orders/ABC/" in fallback["description"]
    delivery = Delivery.objects.get(notification=refused)
    assert delivery.status == SENT
    assert attempt_codes(delivery) == [400, 400, 200]
    assert delivery.attempt_log.filter(fallback=True).count() == 1


def test_a_refused_fallback_is_dead_and_not_sent_again(fake_discord):
    destination = fake_discord.destination("orders")
    refused = notify("bad colour", color=0x1000000)
    notify("next")

    deliver_all()

    assert Delivery.objects.get(notification=refused).status == DEAD
    assert [r.status for r in fake_discord.requests] == [400, 400, 400, 200]
    assert titles(fake_discord, destination) == ["next"]


def test_an_oversize_customer_name_becomes_a_valid_embed_that_pings_nobody(fake_discord):
    name = ("@everyone 🎉👩‍👩‍👧 <@&1234> " * 400)[:10_000]
    order = make_order(product=make_product(name=("Ünïcode 🚀 " * 40)[:200]))
    order.email = name  # in memory: customer text longer than any column could hold
    destination = fake_discord.destination("orders")

    for _ in range(3):
        enqueue(Event.ORDER_COMPLETED, order_embed(Event.ORDER_COMPLETED, order, [("Name", name)]))

    deliver_all()

    assert {r.status for r in fake_discord.requests} == {200}
    for message in fake_discord.messages():
        assert validation_errors(message.body) is None
        assert message.allowed_mentions == {"parse": []}
        assert message.pings == []
    assert len(titles(fake_discord, destination)) == 3
    assert Delivery.objects.filter(status=SENT).count() == 3


# What the channel shows: Discord hides embeds that share a link, and refuses links to a host
# without a dot (the default SITE_URL, http://localhost:8000).


@pytest.mark.parametrize(
    "site_url", ["default", "http://shop:8000", "https://shop.example.com", "http://127.0.0.1:8000"]
)
def test_a_backlog_of_100_events_of_10_orders_shows_every_event_once_in_order(
    fake_discord, settings, site_url
):
    if site_url != "default":
        settings.SITE_URL = site_url
    orders = make_orders()
    destination = fake_discord.destination("orders")
    backlog = order_backlog(orders)

    deliver_all()

    assert_channel_shows_every_event_once_in_order(fake_discord, destination, backlog)
    assert [len(m.sent_embeds) for m in fake_discord.messages()] == [10] * 10  # still batched
    assert {r.status for r in fake_discord.requests} == {200}


def test_in_one_message_only_the_first_embed_of_an_order_carries_its_link(fake_discord, settings):
    settings.SITE_URL = "https://shop.example.com"
    [first, second] = make_orders(2)
    destination = fake_discord.destination("orders")
    for order in (first, second, first, second, first):
        enqueue(Event.ORDER_PENDING, order_embed(Event.ORDER_PENDING, order), order=order)

    deliver_all()

    [message] = fake_discord.messages(destination.webhook_id)
    links = [embed.get("url") for embed in message.sent_embeds]
    assert links == [order_link(first), order_link(second), None, None, None]
    assert [
        order_link(o) in e.get("description", "")
        for o, e in zip((first, second, first, second, first), message.sent_embeds, strict=True)
    ] == [False, False, True, True, True]


def test_an_order_link_to_a_host_without_a_dot_is_sent_in_the_description(settings):
    settings.SITE_URL = "http://localhost:8000"
    order = make_order()

    [embed] = for_message([order_embed(Event.ORDER_COMPLETED, order)])

    assert "url" not in embed
    assert embed["description"] == order_link(order)
    assert validation_errors({"embeds": [embed]}) is None


def test_a_link_discord_refused_is_never_kept_in_the_fallback(fake_discord):
    destination = fake_discord.destination("orders")
    link = "http://shop:8000/mgmt/orders/ABC/"
    refused = notify("x" * 300, url=link)  # stored before this shop knew better

    deliver_all()

    delivery = Delivery.objects.get(notification=refused)
    assert delivery.status == SENT
    [embed] = fake_discord.embeds(destination.webhook_id)
    assert "url" not in embed
    assert link in embed["description"]


def test_send_test_notification_sends_an_embed_shaped_like_an_order_embed(fake_discord, settings):
    settings.SITE_URL = "https://shop.example.com"
    fake_discord.destination("orders")

    call_command("send_test_notification", "--destination", "orders", stdout=StringIO())

    [embed] = fake_discord.embeds()
    assert embed["url"] == "https://shop.example.com/mgmt/"
    assert embed["footer"] == {"text": "License Shop"}
    assert [f["name"] for f in embed["fields"]] == ["Shop", "Sent by"]


def test_send_test_notification_carries_the_link_as_real_embeds_do_with_the_default_site_url(
    fake_discord,
):
    fake_discord.destination("orders")
    out = StringIO()

    call_command("send_test_notification", "--destination", "orders", stdout=out)

    [embed] = fake_discord.embeds()
    assert "url" not in embed
    assert f"{settings.SITE_URL}/mgmt/" in embed["description"]
    assert "sent" in out.getvalue()


# Threads and forum channels.


def test_a_pasted_webhook_url_keeps_its_thread():
    url = "https://discord.com/api/webhooks/123456789012345678/" + "t" * 68
    assert parse_webhook_url(url + "?thread_id=987654321098765432") == (
        "123456789012345678",
        "t" * 68,
        "987654321098765432",
    )
    assert parse_webhook_url(url + "?wait=true").thread_id == ""


def test_the_settings_webhook_url_keeps_its_thread_and_delivers_the_backlog_into_it(
    fake_discord, settings
):
    orders = make_orders()
    destination = fake_discord.destination("settings")
    fake_discord.add_thread(destination.webhook_id, "987654321098765432")
    settings.DISCORD_WEBHOOK_URL = fake_discord.webhook_url(
        destination, thread_id="987654321098765432"
    )
    destination.delete()  # the shop knows it from the setting only

    backlog = order_backlog(orders)
    deliver_all()

    from_settings = Destination.objects.get(from_settings=True)
    assert from_settings.thread_id == "987654321098765432"
    assert {m.thread_id for m in fake_discord.messages()} == {"987654321098765432"}
    assert_channel_shows_every_event_once_in_order(fake_discord, from_settings, backlog)


def test_the_admin_form_keeps_the_thread_of_a_pasted_url_and_the_thread_stays_editable(
    fake_discord,
):
    destination = fake_discord.destination("orders")
    url = fake_discord.webhook_url(destination, thread_id="987654321098765432")
    data = {"name": "orders", "events": ["order.completed"], "enabled": "on"}

    form = DestinationForm({**data, "webhook_url": url, "thread_id": ""}, instance=destination)
    assert form.is_valid(), form.errors
    form.save()
    destination.refresh_from_db()
    assert destination.thread_id == "987654321098765432"

    form = DestinationForm(
        {**data, "webhook_url": "", "thread_id": "111111111111111111"}, instance=destination
    )
    assert form.is_valid(), form.errors
    form.save()
    destination.refresh_from_db()
    assert (destination.token, destination.thread_id) == (destination.token, "111111111111111111")


def test_a_forum_webhook_without_a_thread_disables_its_destination_and_keeps_every_message(
    fake_discord,
):
    orders = make_orders()
    forum = fake_discord.destination("forum", forum=True)
    backlog = order_backlog(orders)

    deliver_all()

    forum.refresh_from_db()
    assert not forum.enabled
    assert "220001" in forum.disabled_reason
    assert "forum" in forum.disabled_reason and "thread" in forum.disabled_reason
    assert [(r.status, len(r.sent_embeds)) for r in fake_discord.requests] == [(400, 10)]
    assert not Delivery.objects.filter(Q(solo=True) | Q(use_fallback=True)).exists()
    assert forum.deliveries.filter(status=PENDING).count() == 100
    meanwhile = order_backlog(orders[:1], start=100)
    assert forum.deliveries.filter(status=PENDING).count() == 110

    fake_discord.add_thread(forum.webhook_id, "987654321098765432")  # staff set a thread
    Destination.objects.filter(pk=forum.pk).update(
        thread_id="987654321098765432", enabled=True, disabled_reason=""
    )
    deliver_all()

    assert_channel_shows_every_event_once_in_order(fake_discord, forum, backlog + meanwhile)


def test_a_thread_that_no_longer_exists_disables_its_destination_with_the_reason(fake_discord):
    destination = fake_discord.destination("orders", thread_id="987654321098765432")
    fake_discord.threads.clear()  # someone deleted the thread
    notify("event")

    deliver_all()

    destination.refresh_from_db()
    assert not destination.enabled
    assert "10003" in destination.disabled_reason
    assert "thread" in destination.disabled_reason
    assert destination.deliveries.get().status == PENDING


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [
        (400, 220001, "forum"),
        (400, 220002, "forum"),
        (400, 220003, "forum"),
        (400, 220004, "forum"),
        (400, 40058, "forum"),
        (400, 50008, "text channel"),
        (400, 50024, "kind of channel"),
        (400, 160005, "locked"),
        (404, 10003, "thread"),
        (404, 10015, "deleted"),
        (401, 50027, "token"),
        (403, 50001, "access"),
        (403, 50013, "permission"),
        (403, None, "no longer"),
        (404, None, "deleted"),
    ],
)
def test_what_is_about_the_destination_not_the_message_is_told_in_words(status, code, words):
    answer = Answer(status=status, error_code=code)

    assert words in answer.destination_problem
    assert str(status) in answer.destination_problem
    assert not answer.permanent and not answer.transient


@pytest.mark.parametrize(
    ("status", "code"), [(400, 50035), (400, None), (400, 240000), (413, 40005)]
)
def test_a_refusal_of_the_message_is_not_about_the_destination(status, code):
    answer = Answer(status=status, error_code=code)

    assert answer.destination_problem == ""
    assert answer.permanent


def test_send_test_notification_to_a_forum_without_a_thread_fails_saying_why(fake_discord):
    fake_discord.destination("forum", forum=True)
    out = StringIO()

    with pytest.raises(CommandError, match="Not every destination"):
        call_command("send_test_notification", "--destination", "forum", stdout=out)

    assert "forum" in out.getvalue()


# Cloudflare bans, and 429s the headers did not announce.


def ban_episodes(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("page", ["html", "json", "403"])
def test_a_ban_holds_every_destination_for_minutes_and_the_backlog_arrives_once_it_ends(
    fake_discord, caplog, page
):
    caplog.set_level(logging.INFO, logger="notifications")
    orders = make_orders()
    first, second = fake_discord.destination("first"), fake_discord.destination("second")
    backlog = order_backlog(orders)
    fake_discord.ban(seconds=3600, body=page)
    start = timezone.now()

    assert deliver_due() == 1
    assert deliver_due() == 0  # no destination may send: the ban is the address's
    assert len(fake_discord.requests) == 1
    assert not Destination.objects.filter(enabled=False).exists()  # not theirs to answer for
    first_wait = GlobalRateLimit.objects.get().blocked_until - start
    assert timedelta(minutes=5) <= first_wait <= timedelta(minutes=10)
    moments = [start]
    while moments[-1] < start + timedelta(hours=1):  # while the ban lasts, try when told
        moments.append(GlobalRateLimit.objects.get().blocked_until)
        with time_machine.travel(moments[-1], tick=False):
            deliver_due()
    waits = [later - earlier for earlier, later in itertools.pairwise(moments)]
    assert min(waits) >= timedelta(minutes=5)
    assert waits[-1] >= 3 * waits[0]  # longer and longer, jitter aside
    banned = [r for r in fake_discord.requests if r.banned]
    assert 2 <= len(banned) <= 5  # in an hour
    assert len(ban_episodes(caplog)) == 1  # once per episode, not per request
    assert "ban" in ban_episodes(caplog)[0].lower()

    with time_machine.travel(start + timedelta(hours=5), tick=True):
        deliver_all()

    assert_channel_shows_every_event_once_in_order(fake_discord, first, backlog)
    assert_channel_shows_every_event_once_in_order(fake_discord, second, backlog)
    assert len(ban_episodes(caplog)) == 1
    assert any("again" in r.getMessage() for r in caplog.records)
    assert_token_hidden(first, caplog.text)


def test_a_ban_counts_towards_a_messages_age_and_a_dead_message_can_be_sent_again(
    fake_discord, settings
):
    destination = fake_discord.destination("orders")
    old = notify("too old")
    Delivery.objects.filter(notification=old).update(
        created_at=timezone.now() - timedelta(seconds=settings.DISCORD_MAX_AGE + 1)
    )
    fake_discord.ban(seconds=600)

    assert deliver_one("test")

    delivery = Delivery.objects.get(notification=old)
    assert delivery.status == DEAD
    assert resend(Delivery.objects.filter(pk=delivery.pk)) == 1
    with time_machine.travel(timezone.now() + timedelta(hours=2), tick=True):
        deliver_all()
    assert titles(fake_discord, destination) == ["too old"]


def test_invalid_requests_stay_far_below_discords_ban_threshold_at_any_number_of_destinations(
    fake_discord, monkeypatch
):
    """Discord bans an address after 10,000 invalid requests (401, 403, 429 not `shared`) in 10
    minutes. Each destination alone makes few (401 and 403 disable it; a 429 makes it wait), but
    many destinations could add up: so the worker keeps a shared count and stops every request
    at INVALID_BUDGET in 10 minutes. A request claimed before the count filled may still be in
    flight, one per worker, and one per worker may have been claimed just before the window
    opened: at most INVALID_BUDGET + 2 times workers invalid requests in any 10 minutes, whatever the
    number of destinations."""
    monkeypatch.setattr(ip_limits, "INVALID_BUDGET", 5)
    destinations = [fake_discord.destination(f"dest {n}") for n in range(40)]
    Destination.objects.update(token="wrong-" + "t" * 60)  # every one answers 401
    notify("event")
    start = timezone.now()

    deliver_due()

    assert len(fake_discord.invalid_requests()) == 5  # not 40
    assert deliver_due() == 0
    with time_machine.travel(start + timedelta(minutes=10, seconds=1), tick=False):
        deliver_due()
    assert len(fake_discord.invalid_requests()) == 10
    assert Destination.objects.filter(enabled=False).count() == 10
    assert all(d.deliveries.get().status == PENDING for d in destinations)

    monkeypatch.undo()
    workers = 100  # far more than any shop runs
    assert ip_limits.INVALID_BUDGET + 2 * workers <= 10_000 / 8


def test_a_429_while_remaining_was_above_zero_is_waited_out_and_nothing_is_lost(fake_discord):
    orders = make_orders()
    destination = fake_discord.destination("orders")
    backlog = order_backlog(orders)
    fake_discord.throttle_next(retry_after=0.3)

    deliver_all()

    [throttled] = fake_discord.rate_limited()
    assert throttled.scope == "user"
    assert_channel_shows_every_event_once_in_order(fake_discord, destination, backlog)
    assert fake_discord.most_429s_in_one_window() == 1


# Workers.


def work_until_drained(name: str, sent: Counter, errors: list, start=None) -> None:
    try:
        if start is not None:
            start.wait(timeout=30)
        deadline = time.monotonic() + 40
        while Delivery.objects.filter(status=PENDING).exists():
            assert time.monotonic() < deadline, "the backlog never drained"
            count = deliver_due(name)
            sent[name] += count
            if not count:
                time.sleep(0.005)
    except Exception as error:  # reported by the test, in the main thread
        errors.append(error)
    finally:
        connection.close()


@POSTGRES_ONLY
def test_two_worker_threads_at_once_send_nothing_twice(fake_discord):
    destinations = [fake_discord.destination(f"dest {n}") for n in range(4)]
    for n in range(60):
        notify(f"event {n}")
    sent, errors = Counter(), []
    # Both start together, and the first answers are slow, so neither can drain it all alone.
    start = threading.Barrier(2)
    fake_discord.fail_next("slow", times=4, seconds=0.3)

    threads = [
        threading.Thread(target=work_until_drained, args=(name, sent, errors, start))
        for name in ("one", "two")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    for destination in destinations:
        assert titles(fake_discord, destination) == [f"event {n}" for n in range(60)]
    assert Delivery.objects.filter(status=SENT).count() == 240
    assert sent["one"] and sent["two"]  # both workers took part
    assert fake_discord.violations() == []


def test_two_worker_processes_at_once_send_nothing_twice(fake_discord, shared_database):
    destinations = [fake_discord.destination(f"dest {n}") for n in range(6)]
    for n in range(50):
        notify(f"event {n}")
    fake_discord.fail_next("slow", times=30, seconds=0.1)  # enough work for both to start
    url, copy_back = shared_database()

    workers = [start_worker(fake_discord, url) for _ in range(2)]
    finished = wait_until(lambda: len(fake_discord.embeds()) >= 300, timeout=40)
    outputs = stop(workers)
    copy_back()

    assert finished, fake_discord.stats()
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    for destination in destinations:
        assert titles(fake_discord, destination) == [f"event {n}" for n in range(50)]
    assert Delivery.objects.filter(status=SENT).count() == 300
    assert Heartbeat.objects.filter(kind="deliver_notifications").count() == 2  # both ran
    assert fake_discord.violations() == []


def test_a_crash_between_send_and_record_repeats_at_most_one_message_and_loses_none(
    fake_discord, monkeypatch
):
    destination = fake_discord.destination("orders")
    for n in range(15):
        notify(f"event {n}")
    record = worker.record

    def crash_once(claim, answer):
        monkeypatch.setattr(worker, "record", record)
        raise RuntimeError("the worker died after Discord answered")

    monkeypatch.setattr(worker, "record", crash_once)
    with pytest.raises(RuntimeError):
        deliver_one("crashing")
    assert deliver_due("other") == 0  # the crashed worker's lease still holds the destination

    with time_machine.travel(timezone.now() + worker.LEASE + timedelta(seconds=1), tick=True):
        deliver_all("other")

    received = titles(fake_discord, destination)
    assert list(dict.fromkeys(received)) == [f"event {n}" for n in range(15)]  # none lost
    repeated = [title for title, count in Counter(received).items() if count > 1]
    assert repeated == [f"event {n}" for n in range(10)]  # the one message sent before the crash
    assert len(received) == 15 + 10  # ... repeated once
    assert Delivery.objects.filter(status=SENT).count() == 15


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="Django never closes an in-memory SQLite database"
)
def test_no_database_connection_is_held_while_discord_answers(fake_discord, monkeypatch):
    fake_discord.destination("orders")
    notify("event")
    held = []

    def execute_webhook(*args, **kwargs):
        held.append(connection.connection is not None)
        return real(*args, **kwargs)

    real = worker.execute_webhook
    monkeypatch.setattr(worker, "execute_webhook", execute_webhook)

    deliver_all()

    assert held == [False]


@pytest.fixture
def shared_database(tmp_path):
    """A DATABASE_URL that worker processes share with this test, and what to call once they
    exit so that the test sees what they wrote."""

    def share() -> tuple[str, Callable[[], None]]:
        if connection.vendor == "postgresql":
            db = connection.settings_dict
            host = f"{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}"
            return f"postgres://{db['USER']}:{db['PASSWORD']}@{host}/{db['NAME']}", lambda: None
        path = tmp_path / "workers.sqlite3"  # the test database lives in memory: copy it out
        connection.ensure_connection()
        with sqlite3.connect(path) as copy:
            connection.connection.backup(copy)

        def copy_back() -> None:
            with sqlite3.connect(path) as copy:
                copy.backup(connection.connection)

        return f"sqlite:///{path}", copy_back

    return share


def start_worker(fake, database_url: str) -> subprocess.Popen:
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DISCORD_API_BASE": fake.url,
        "DISCORD_WEBHOOK_URL": "",
        "DISCORD_CHANNEL_LIMIT": str(fake.channel_limit),
        "DISCORD_CHANNEL_WINDOW": str(fake.channel_window),
        "DISCORD_POLL_INTERVAL": "0.02",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "deliver_notifications"],
        cwd=settings.BASE_DIR,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(workers: list[subprocess.Popen]) -> list[tuple[str, str]]:
    """SIGTERM each worker and wait for it; their (stdout, stderr)."""
    for process in workers:
        process.send_signal(signal.SIGTERM)
    try:
        return [process.communicate(timeout=30) for process in workers]
    finally:
        for process in workers:
            process.kill()


def wait_until(condition: Callable[[], bool], *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_sigterm_lets_the_message_in_flight_be_recorded_then_the_worker_exits(
    fake_discord, shared_database
):
    destination = fake_discord.destination("orders")
    for n in range(15):
        notify(f"event {n}")
    fake_discord.fail_next("slow", seconds=2)
    url, copy_back = shared_database()

    process = start_worker(fake_discord, url)
    assert fake_discord.wait_for_requests(1, timeout=30)
    [(output, errors)] = stop([process])  # while Discord still holds its answer back
    copy_back()

    assert process.returncode == 0, errors
    assert "stopped" in output
    assert len(fake_discord.requests) == 1  # it finished that send and started no other
    [message] = fake_discord.messages()
    sent = Delivery.objects.filter(status=SENT).order_by("id")
    assert [d.notification.embed["title"] for d in sent] == [f"event {n}" for n in range(10)]
    assert {d.message_id for d in sent} == {message.message_id}
    assert Delivery.objects.filter(status=PENDING).count() == 5
    assert_token_hidden(destination, output, errors)


# The commands.


def test_deliver_notifications_once_drains_what_may_be_sent_and_says_how_many(fake_discord):
    destination = fake_discord.destination("orders")
    for n in range(12):
        notify(f"event {n}")
    out = StringIO()

    call_command("deliver_notifications", "--once", stdout=out)

    assert out.getvalue().strip() == "sent 2 message(s)"
    assert titles(fake_discord, destination) == [f"event {n}" for n in range(12)]


def test_send_test_notification_reports_the_message_discord_created(fake_discord):
    destination = fake_discord.destination("orders")
    out = StringIO()

    call_command("send_test_notification", "--destination", "orders", stdout=out)

    [message] = fake_discord.messages()
    assert message.embeds[0]["title"] == "Test notification from License Shop"
    assert out.getvalue().strip() == f"orders: sent (message {message.message_id})"
    assert_token_hidden(destination, out.getvalue())


def test_send_test_notification_to_a_deleted_webhook_fails_with_a_clear_error(fake_discord):
    destination = fake_discord.destination("orders")
    fake_discord.delete_webhook(destination.webhook_id)
    out = StringIO()

    with pytest.raises(CommandError, match="Not every destination"):
        call_command("send_test_notification", "--destination", "orders", stdout=out)

    assert "Unknown Webhook" in out.getvalue()
    destination.refresh_from_db()
    assert not destination.enabled
    assert_token_hidden(destination, out.getvalue())


def test_send_test_notification_to_a_disabled_destination_says_why(fake_discord):
    destination = fake_discord.destination("orders")
    Destination.objects.filter(pk=destination.pk).update(
        enabled=False, disabled_reason="Discord answered 404: the webhook was deleted."
    )

    with pytest.raises(CommandError, match="disabled"):
        call_command("send_test_notification", "--destination", "orders", stdout=StringIO())

    assert fake_discord.requests == []


def test_the_token_never_appears_in_logs_errors_or_output(fake_discord, settings, caplog):
    caplog.set_level(logging.DEBUG)
    short_timeouts(fake_discord, settings)
    destination = fake_discord.destination("orders")
    fake_discord.fail_next("500")
    fake_discord.fail_next("hang")
    notify("event")
    deliver_all()
    settings.DISCORD_API_BASE = "http://127.0.0.1:9/api/v10"  # nothing listens: a network error
    notify("unreachable")
    assert deliver_one("test")
    settings.DISCORD_API_BASE = fake_discord.url
    fake_discord.delete_webhook(destination.webhook_id)
    backoff = Destination.objects.get().blocked_until
    assert wait_until(lambda: timezone.now() > backoff, timeout=5)
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError):
        call_command("send_test_notification", stdout=out, stderr=err)

    errors = set(DeliveryAttempt.objects.values_list("error", flat=True))
    assert any("ConnectionError" in error for error in errors)
    assert any("ReadTimeout" in error for error in errors)
    assert "Unknown Webhook" in out.getvalue()
    assert_token_hidden(destination, caplog.text, out.getvalue(), err.getvalue())


# The fake itself: its checks would catch a sender that misbehaves.


def post(fake, webhook_id: str, token: str, body: dict) -> requests.Response:
    url = f"{fake.url}/webhooks/{webhook_id}/{token}"
    return requests.post(url, json=body, params={"wait": "true"}, timeout=5)


def test_the_fake_flags_a_sender_that_ignores_the_advertised_wait(fake_discord):
    fake_discord.add_webhook("1000", "token-1000")
    body = {"embeds": [{"title": "hi"}], "allowed_mentions": {"parse": []}}

    answers = [post(fake_discord, "1000", "token-1000", body) for _ in range(7)]

    assert [a.status_code for a in answers] == [200] * 5 + [429] * 2
    assert [a.headers["X-RateLimit-Remaining"] for a in answers[:5]] == ["4", "3", "2", "1", "0"]
    assert answers[5].json()["global"] is False
    assert answers[5].headers["X-RateLimit-Scope"] == "user"
    assert fake_discord.violations() == fake_discord.requests[5:]
    assert fake_discord.most_429s_in_one_window() == 2


def test_the_fake_answers_its_hidden_channel_limit_with_a_shared_429(fake_discord):
    fake_discord.bucket_limit, fake_discord.channel_limit = 100, 2
    fake_discord.add_webhook("1000", "token-1000")
    body = {"embeds": [{"title": "hi"}]}

    answers = [post(fake_discord, "1000", "token-1000", body) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[1].headers["X-RateLimit-Remaining"] == "98"  # no warning beforehand
    assert answers[2].headers["X-RateLimit-Scope"] == "shared"
    assert 0 < answers[2].json()["retry_after"] <= fake_discord.channel_window


def test_the_fake_refuses_what_discord_refuses(fake_discord):
    fake_discord.add_webhook("1000", "token-1000")
    fake_discord.add_webhook("2000", "token-2000")
    fake_discord.delete_webhook("2000")
    fields = [{"name": "n", "value": "v" * 1025}]

    too_long = post(fake_discord, "1000", "token-1000", {"embeds": [{"fields": fields}]})
    total = post(fake_discord, "1000", "token-1000", {"embeds": [{"description": "d" * 4000}] * 2})
    deleted = post(fake_discord, "2000", "token-2000", {"embeds": [{"title": "hi"}]})
    wrong = post(fake_discord, "1000", "not-the-token", {"embeds": [{"title": "hi"}]})

    assert too_long.status_code == 400
    assert too_long.json()["code"] == 50035
    error = too_long.json()["errors"]["embeds"]["0"]["fields"]["0"]["value"]["_errors"][0]
    assert error["code"] == "BASE_TYPE_MAX_LENGTH"
    assert total.json()["errors"]["embeds"]["_errors"][0]["code"] == "MAX_EMBED_SIZE_EXCEEDED"
    assert (deleted.status_code, deleted.json()["code"]) == (404, 10015)
    assert (wrong.status_code, wrong.json()["code"]) == (401, 50027)


def test_the_fake_runs_standalone_with_its_stats_and_controls_over_http():
    command = [sys.executable, "-m", "testkit.fake_discord", "--port", "0", "--bucket-limit", "2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=settings.BASE_DIR)
    try:
        api = process.stdout.readline().split()[3]  # "fake Discord at http://...:N/api/v10 ..."
        root = api.removesuffix("/api/v10")
        control = {"action": "fail_next", "kind": "502"}
        assert requests.post(f"{root}/_control", json=control, timeout=5).ok
        body = {"embeds": [{"title": "hi"}]}
        statuses = [
            requests.post(
                f"{api}/webhooks/1000/any-token?wait=true", json=body, timeout=5
            ).status_code
            for _ in range(4)
        ]
        stats = requests.get(f"{root}/_stats", timeout=5).json()
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert statuses == [502, 200, 200, 429]
    assert stats["requests"] == 4
    assert stats["rate_limited"] == {"user": 1}
    assert stats["violations"] == 1
    assert stats["embeds"] == 2


def test_the_fake_shows_only_the_first_of_several_embeds_sharing_a_url(fake_discord):
    fake_discord.add_webhook("1000", "token-1000")
    link = "https://shop.example.com/mgmt/orders/ABC/"
    body = {"embeds": [{"title": "a", "url": link}, {"title": "b", "url": link}, {"title": "c"}]}

    assert post(fake_discord, "1000", "token-1000", body).status_code == 200

    assert [e["title"] for e in fake_discord.embeds()] == ["a", "c"]
    assert [e["title"] for e in fake_discord.hidden_embeds()] == ["b"]


@pytest.mark.parametrize(
    ("link", "accepted"),
    [
        ("http://localhost:8000/mgmt/orders/1/", False),
        ("http://shop:8000/mgmt/orders/1/", False),
        ("https://shop.example.com/mgmt/orders/1/", True),
        ("http://127.0.0.1:8000/mgmt/orders/1/", True),
    ],
)
def test_the_fake_refuses_an_embed_link_to_a_host_without_a_dot_as_discord_does(
    fake_discord, link, accepted
):
    fake_discord.add_webhook("1000", "token-1000")
    body = {"embeds": [{"title": "ok"}, {"title": "link", "url": link}]}

    answer = post(fake_discord, "1000", "token-1000", body)

    expected = (200, None) if accepted else (400, {"embeds": ["1"]})
    assert (answer.status_code, None if accepted else answer.json()) == expected


def test_the_fake_wants_a_thread_for_a_forum_and_knows_its_threads(fake_discord):
    fake_discord.add_webhook("1000", "token-1000", forum=True)
    fake_discord.add_thread("1000", "555555555555555555")
    body = {"embeds": [{"title": "hi"}]}

    no_thread = post(fake_discord, "1000", "token-1000", body)
    url = f"{fake_discord.url}/webhooks/1000/token-1000"
    in_thread, unknown = (
        requests.post(url, json=body, params={"wait": "true", "thread_id": t}, timeout=5)
        for t in ("555555555555555555", "666666666666666666")
    )

    assert (no_thread.status_code, no_thread.json()["code"]) == (400, 220001)
    assert in_thread.status_code == 200
    assert in_thread.json()["channel_id"] == "555555555555555555"
    assert (unknown.status_code, unknown.json()["code"]) == (404, 10003)


@pytest.mark.parametrize("page", ["html", "json"])
def test_the_fake_bans_like_cloudflare_every_request_without_rate_limit_headers(fake_discord, page):
    fake_discord.add_webhook("1000", "token-1000")
    fake_discord.ban(seconds=600, body=page)

    answers = [post(fake_discord, w, "token-1000", {"embeds": [{"title": "hi"}]}) for w in "12"]

    assert [a.status_code for a in answers] == [429, 429]  # even for an unknown webhook
    assert not [h for a in answers for h in a.headers if h.lower().startswith("x-ratelimit")]
    assert "retry_after" not in answers[0].text
    assert ("text/html" in answers[0].headers["Content-Type"]) == (page == "html")
    assert len(fake_discord.invalid_requests()) == 2


def test_the_fake_can_answer_429_while_remaining_is_still_above_zero(fake_discord):
    fake_discord.add_webhook("1000", "token-1000")
    body = {"embeds": [{"title": "hi"}]}

    first = post(fake_discord, "1000", "token-1000", body)
    fake_discord.throttle_next(retry_after=0.5)
    throttled = post(fake_discord, "1000", "token-1000", body)
    too_early = post(fake_discord, "1000", "token-1000", body)

    assert first.status_code == 200
    assert first.headers["X-RateLimit-Remaining"] == "4"
    assert throttled.status_code == 429
    assert throttled.headers["X-RateLimit-Remaining"] == "4"
    assert throttled.json()["retry_after"] == 0.5
    assert fake_discord.violations() == [fake_discord.requests[2]]
    assert too_early.status_code == 200  # the bucket had room: only the sender broke the rule
