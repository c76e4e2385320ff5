import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from licenses.pool import import_keys
from notifications import outbox
from notifications.discord import InvalidWebhookURL, parse_webhook_url
from notifications.embeds import LIMITS, MESSAGE_TOTAL, embed_size, fit
from notifications.events import COLOURS, DEFAULT_EVENTS, Event
from notifications.models import Delivery, Destination, Notification
from notifications.templatetags.discord import ESCAPE
from orders.models import LicenseKind
from orders.webhooks import handle_stripe_event
from testkit.stripe_objects import (
    dispute_obj,
    intent_failed_obj,
    make_event,
    refund_obj,
    session_obj,
)
from tests.factories import make_order, make_product

pytestmark = pytest.mark.django_db

URL = "https://discord.com/api/webhooks/123456789012345678/" + "t" * 68


def deliver(event_type, obj):
    handle_stripe_event(make_event(event_type, obj))


def events_of(order):
    return list(order.notifications.order_by("id").values_list("event", flat=True))


def test_a_paid_order_tells_pending_then_completion_and_payment():
    order = make_order()
    deliver("checkout.session.completed", session_obj(order))
    # The status moves first; then what changed is told with the final facts.
    assert events_of(order) == ["order.pending", "order.completed", "payment.completed"]


def shown(value: str) -> str:
    """A field's value as Discord shows it: its markdown escapes undone."""
    return ESCAPE.sub(r"\1", value)


def test_each_event_has_its_colour_a_link_to_mgmt_and_the_order_facts(settings):
    settings.SITE_URL = "https://shop.example.com"
    order = make_order(product=make_product(name="Tunewright", price_cents=2900), quantity=2)
    deliver("payment_intent.payment_failed", intent_failed_obj(order, code="insufficient_funds"))
    embed = order.notifications.get(event="payment.failed").embed
    assert embed["color"] == 0xE74C3C == COLOURS[Event.PAYMENT_FAILED]
    assert embed["url"] == f"https://shop.example.com/mgmt/orders/{order.number}/"
    fields = {f["name"]: shown(f["value"]) for f in embed["fields"]}
    assert fields["Customer"] == order.email
    assert fields["Items"] == "2 × Tunewright"
    assert fields["Total"] == "$58.00"
    assert fields["Reason"] == "Your card was declined. (insufficient_funds)"
    assert embed["timestamp"]


def test_refunds_and_disputes_carry_their_amount_reason_and_deadline():
    order = make_order()
    deliver("checkout.session.completed", session_obj(order))
    deliver("refund.created", refund_obj(order, "re_1", 1000))
    deliver("charge.dispute.created", dispute_obj(order, "dp_1"))
    deliver("charge.dispute.closed", dispute_obj(order, "dp_1", status="lost"))
    refund = {
        f["name"]: shown(f["value"])
        for f in order.notifications.get(event="order.refunded").embed["fields"]
    }
    assert refund["Refund"] == "$10.00"
    assert refund["Refunded"] == "$10.00 of $25.00: partial"
    opened = {
        f["name"]: f["value"]
        for f in order.notifications.get(event="order.disputed").embed["fields"]
    }
    assert opened["Dispute reason"] == "fraudulent"
    assert opened["Evidence due"].startswith("<t:")
    closed = {
        f["name"]: f["value"]
        for f in order.notifications.get(event="order.dispute_closed").embed["fields"]
    }
    assert closed["Outcome"] == "lost"


def test_embeds_never_carry_a_license_key():
    order = make_order()
    deliver("checkout.session.completed", session_obj(order))
    key = order.licenses.get().key
    for notification in Notification.objects.all():
        assert key not in str(notification.embed)


def test_a_duplicate_event_notifies_nothing_more():
    order = make_order()
    event = make_event("checkout.session.completed", session_obj(order))
    handle_stripe_event(event)
    handle_stripe_event(event)
    deliver("checkout.session.completed", session_obj(order))
    assert events_of(order).count("order.completed") == 1


def test_stock_running_out_is_a_notification():
    product = make_product(license_kind=LicenseKind.POOL, stock_alert_threshold=1)
    import_keys(product, ["K-1"])
    deliver("checkout.session.completed", session_obj(make_order(product=product)))
    notification = Notification.objects.get(event="license.stock_low")
    assert "out of stock" in notification.embed["description"]


def test_without_any_destination_notifications_are_recorded_with_no_delivery():
    deliver("checkout.session.completed", session_obj(make_order()))
    assert Notification.objects.count() == 3
    assert Delivery.objects.count() == 0


def test_the_settings_webhook_becomes_a_destination_for_the_default_events(settings):
    settings.DISCORD_WEBHOOK_URL = URL
    deliver("checkout.session.completed", session_obj(make_order()))
    destination = Destination.objects.get()
    assert (destination.webhook_id, destination.token) == ("123456789012345678", "t" * 68)
    assert destination.events == DEFAULT_EVENTS
    # payment.completed is off by default: it duplicates order.completed.
    sent = Delivery.objects.values_list("notification__event", flat=True)
    assert sorted(sent) == ["order.completed", "order.pending"]


def test_a_destination_gets_only_the_events_it_subscribed_to():
    Destination.objects.create(
        name="refunds", webhook_id="1" * 18, token="x" * 68, events=["order.refunded"]
    )
    Destination.objects.create(name="off", webhook_id="2" * 18, token="y" * 68, enabled=False)
    order = make_order()
    deliver("checkout.session.completed", session_obj(order))
    deliver("refund.created", refund_obj(order, "re_1", 2500))
    assert list(Delivery.objects.values_list("destination__name", "notification__event")) == [
        ("refunds", "order.refunded")
    ]


@pytest.mark.parametrize(
    "url",
    [
        URL,
        URL + "/",
        URL + "?wait=true",
        "https://ptb.discord.com/api/v10/webhooks/123456789012345678/" + "t" * 68,
        "https://discordapp.com/api/webhooks/123456789012345678/" + "t" * 68,
    ],
)
def test_a_pasted_webhook_url_is_reduced_to_its_id_and_token(url):
    assert parse_webhook_url(url) == ("123456789012345678", "t" * 68, "")  # no thread


@pytest.mark.parametrize(
    "url",
    [
        "",
        "http://discord.com/api/webhooks/123456789012345678/" + "t" * 68,
        "https://evil.example.com/api/webhooks/123456789012345678/" + "t" * 68,
        "https://discord.com.evil.example/api/webhooks/123456789012345678/" + "t" * 68,
        "https://discord.com/api/webhooks/123/short",
        "https://discord.com/api/webhooks/123456789012345678/" + "t" * 68 + "/../../users/@me",
    ],
)
def test_anything_else_is_refused(url):
    with pytest.raises(InvalidWebhookURL):
        parse_webhook_url(url)


def test_fit_shortens_long_customer_text_within_every_limit():
    name = "🦄@everyone " * 1000
    embed = fit(
        {
            "title": name,
            "description": name,
            "fields": [{"name": name, "value": name}] * 30,
            "footer": {"text": name},
        }
    )
    assert len(embed["title"]) <= LIMITS["title"]
    assert len(embed["description"]) <= LIMITS["description"]
    assert len(embed["fields"]) <= 25
    assert all(len(f["name"]) <= 256 and 0 < len(f["value"]) <= 1024 for f in embed["fields"])
    assert len(embed["footer"]["text"]) <= LIMITS["footer"]
    assert embed_size(embed) <= MESSAGE_TOTAL
    assert embed["title"].endswith("…")


def test_fit_leaves_a_small_embed_alone():
    embed = {"title": "Order ABC completed", "fields": [{"name": "Total", "value": "$1.00"}]}
    assert fit(embed) == embed


def test_a_destination_discord_refused_keeps_its_messages_and_one_staff_switched_off_gets_none():
    Destination.objects.create(
        name="gone", webhook_id="1" * 18, token="x" * 68, enabled=False, disabled_reason="404"
    )
    Destination.objects.create(name="off", webhook_id="2" * 18, token="y" * 68, enabled=False)
    deliver("checkout.session.completed", session_obj(make_order()))
    assert set(Delivery.objects.values_list("destination__name", flat=True)) == {"gone"}


def test_a_new_settings_url_re_enables_the_destination_discord_refused(settings):
    settings.DISCORD_WEBHOOK_URL = URL
    deliver("checkout.session.completed", session_obj(make_order()))
    Destination.objects.update(enabled=False, disabled_reason="Discord answered 404")
    settings.DISCORD_WEBHOOK_URL = URL.replace("t" * 68, "u" * 68)
    outbox.sync_settings_destination()
    destination = Destination.objects.get()
    assert (destination.enabled, destination.disabled_reason) == (True, "")
    assert destination.token == "u" * 68


def test_an_unset_settings_url_leaves_its_destination_alone(settings):
    settings.DISCORD_WEBHOOK_URL = URL
    outbox.sync_settings_destination()
    settings.DISCORD_WEBHOOK_URL = ""
    deliver("checkout.session.completed", session_obj(make_order()))
    assert Destination.objects.get().enabled
    assert Delivery.objects.count() == 2


def test_an_invalid_settings_url_is_a_system_check_error(settings):
    settings.DISCORD_WEBHOOK_URL = "https://example.com/hooks/123"
    with pytest.raises(SystemCheckError, match=r"notifications\.E001"):
        call_command("check")


def test_a_dispute_first_seen_closed_is_told_as_opened_and_closed():
    order = make_order()
    deliver("checkout.session.completed", session_obj(order))
    deliver("charge.dispute.closed", dispute_obj(order, "dp_1", status="won"))
    deliver("charge.dispute.created", dispute_obj(order, "dp_1"))
    assert events_of(order)[-2:] == ["order.disputed", "order.dispute_closed"]


def test_a_license_using_its_last_activation_tells_staff_once_a_day():
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from licenses.activations import activate, deactivate

    Destination.objects.create(name="licenses", webhook_id="1" * 18, token="x" * 68)
    order = make_order(product=make_product(name="Tunewright", max_activations=2))
    deliver("checkout.session.completed", session_obj(order))
    license = order.licenses.get()
    activate(license, fingerprint="a", label="first")
    assert "license.activation_limit_reached" not in events_of(order)
    last = activate(license, fingerprint="b", label="@everyone [pay](https://evil.example)")
    deactivate(last.activation)
    activate(license, fingerprint="c")
    assert events_of(order).count("license.activation_limit_reached") == 1
    notification = Notification.objects.get(event="license.activation_limit_reached")
    embed = notification.embed
    assert embed["color"] == 0xE67E22 == COLOURS[Event.LICENSE_ACTIVATION_LIMIT_REACHED]
    assert embed["title"] == "Activation limit reached: Tunewright"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Activations"] == "2 of 2"
    assert fields["Last device"] == r"@everyone \[pay\]\(https\://evil.example\)"
    assert license.key not in str(embed) and "fingerprint" not in str(embed).lower()
    assert notification.deliveries.count() == 1  # the outbox row, in the activation's transaction
    with time_machine.travel(timezone.now() + timedelta(days=1, minutes=1)):
        deactivate(license.activations.filter(deactivated_at=None).first())
        activate(license, fingerprint="d")
    assert events_of(order).count("license.activation_limit_reached") == 2


def test_activation_limit_reached_is_a_default_event():
    assert "license.activation_limit_reached" in DEFAULT_EVENTS


def test_destinations_that_took_every_event_get_the_activation_limit_one_on_upgrade():
    import importlib

    from django.apps import apps

    upgrade = importlib.import_module(
        "notifications.migrations.0009_event_activation_limit_reached"
    ).subscribe_every_event_destinations
    before = [e for e in DEFAULT_EVENTS if e != "license.activation_limit_reached"]
    every = Destination.objects.create(
        name="all", webhook_id="1" * 18, token="x" * 68, events=before
    )
    some = Destination.objects.create(
        name="refunds", webhook_id="2" * 18, token="y" * 68, events=["order.refunded"]
    )
    upgrade(apps, None)
    every.refresh_from_db()
    some.refresh_from_db()
    assert every.events == [*before, "license.activation_limit_reached"]
    assert some.events == ["order.refunded"]


def test_destinations_told_of_disputes_get_fraud_warnings_after_the_upgrade():
    """notifications 0012: order.fraud_warning is new; where disputes were told, so are Radar's
    warnings (a dispute's early sign), and a destination without disputes is left alone."""
    import importlib

    from django.apps import apps

    upgrade = importlib.import_module(
        "notifications.migrations.0012_event_fraud_warning"
    ).tell_fraud_warnings_where_disputes_are_told
    disputes = Destination.objects.create(
        name="disputes", webhook_id="1" * 18, token="x" * 68, events=["order.disputed"]
    )
    refunds = Destination.objects.create(
        name="refunds", webhook_id="2" * 18, token="y" * 68, events=["order.refunded"]
    )
    upgrade(apps, None)
    upgrade(apps, None)  # once only
    disputes.refresh_from_db()
    refunds.refresh_from_db()
    assert disputes.events == ["order.disputed", "order.fraud_warning"]
    assert refunds.events == ["order.refunded"]
    assert "order.fraud_warning" in DEFAULT_EVENTS
