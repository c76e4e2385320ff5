"""The transactional outbox: a Notification and one Delivery per subscribed destination, written
in the transaction of the change that caused them. Nothing is sent from here."""

import functools
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.db import connection, transaction
from django.db.models import Q
from django.dispatch import receiver

from shop.rows import insert_sql

from .discord import InvalidWebhookURL, parse_webhook_url
from .events import DEFAULT_EVENTS
from .models import Delivery, DeliveryStatus, Destination, Notification

SETTINGS_DESTINATION = "DISCORD_WEBHOOK_URL"
_synced: dict[str, bool] = {}


@receiver(setting_changed, dispatch_uid="forget_synced_webhook_url")
def _forget_synced_url(setting: str, **kwargs) -> None:
    if setting == "DISCORD_WEBHOOK_URL":
        _synced.clear()


def sync_settings_destination() -> None:
    """Keep the destination named after DISCORD_WEBHOOK_URL in line with the setting (once per
    process and URL). A new webhook, or a new `?thread_id=` in the URL, also re-enables it:
    someone fixed what Discord refused (a forum channel needs a thread). A URL without a thread
    leaves the destination's thread as staff set it. An unset URL changes nothing (a process
    started without it must not silence the shop): disable or delete the destination in the
    admin."""
    url = settings.DISCORD_WEBHOOK_URL
    if not url or _synced.get(url):
        return
    try:
        webhook = parse_webhook_url(url)
    except InvalidWebhookURL:
        return  # reported by the system checks
    row, created = Destination.objects.get_or_create(
        name=SETTINGS_DESTINATION,
        defaults={
            "webhook_id": webhook.webhook_id,
            "token": webhook.token,
            "thread_id": webhook.thread_id,
            "from_settings": True,
            "events": list(DEFAULT_EVENTS),
        },
    )
    moved = (row.webhook_id, row.token) != (webhook.webhook_id, webhook.token)
    if not created and (moved or webhook.thread_id not in ("", row.thread_id)):
        row.webhook_id, row.token, row.from_settings = webhook.webhook_id, webhook.token, True
        row.thread_id = webhook.thread_id  # a new webhook's channel has none of the old threads
        row.enabled, row.disabled_reason, row.channel_id = True, "", ""
        fields = [
            "webhook_id",
            "token",
            "thread_id",
            "from_settings",
            "enabled",
            "disabled_reason",
            "channel_id",
        ]
        row.save(update_fields=fields)
    _synced.clear()
    _synced[url] = True


def enqueue(
    event: str, embed: dict[str, Any], *, order=None, only: list[int] | None = None
) -> Notification:
    """Record the notification and its deliveries, in the caller's transaction."""
    with transaction.atomic(savepoint=False):
        sync_settings_destination()
        if only is not None or connection.vendor not in SUBSCRIBED:
            return _enqueue_with_orm(event, embed, order=order, only=only)
        # What a webhook writes most, without the ORM's four steps (insert, read the
        # destinations, keep the subscribed ones here, bulk insert): on PostgreSQL one statement.
        notification = Notification(event=event, order=order, embed=embed)
        insert, values = insert_sql(notification)
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                deliveries, defaults = _deliveries_sql("n.id", "n, ")
                sql = f"WITH n AS ({insert} RETURNING id), d AS ({deliveries}) SELECT id FROM n"
                cursor.execute(sql, [*values, *defaults, event])
                notification.pk = cursor.fetchone()[0]
            else:
                cursor.execute(insert, values)
                notification.pk = cursor.lastrowid
                deliveries, defaults = _deliveries_sql("%s", "")
                cursor.execute(deliveries, [notification.pk, *defaults, event])
    notification._state.adding = False
    return notification


# A destination that lists the event; `dest.events` is a JSON list of event names.
SUBSCRIBED = {
    "postgresql": "dest.events @> jsonb_build_array(%s::text)",
    "sqlite": "EXISTS (SELECT 1 FROM json_each(dest.events) WHERE json_each.value = %s)",
}


def _deliveries_sql(notification_id: str, source: str) -> tuple[str, list[Any]]:
    """INSERT … SELECT of one new Delivery (its defaults) per destination subscribed to the
    event (the last parameter), as _enqueue_with_orm chooses them."""
    sql, fields = _deliveries_shape(notification_id, source, connection.vendor)
    template = Delivery()
    return sql, [f.get_db_prep_save(f.pre_save(template, add=True), connection) for f in fields]


@functools.cache
def _deliveries_shape(notification_id: str, source: str, vendor: str):
    fields = [f for f in Delivery._meta.concrete_fields if not (f.primary_key or f.is_relation)]
    quote = connection.ops.quote_name
    columns = ["notification_id", "destination_id", *(quote(f.column) for f in fields)]
    sql = (
        f"INSERT INTO {quote(Delivery._meta.db_table)} ({', '.join(columns)})"
        f" SELECT {notification_id}, dest.id{', %s' * len(fields)}"
        f" FROM {source}{quote(Destination._meta.db_table)} dest"
        f" WHERE (dest.enabled OR dest.disabled_reason <> '') AND {SUBSCRIBED[vendor]}"
    )
    return sql, fields


def _enqueue_with_orm(event: str, embed: dict[str, Any], *, order, only) -> Notification:
    notification = Notification.objects.create(event=event, order=order, embed=embed)
    # A destination Discord refused (deleted webhook, wrong token) keeps getting its messages,
    # to send once it is fixed; one staff switched off gets none.
    destinations = Destination.objects.filter(Q(enabled=True) | ~Q(disabled_reason=""))
    destinations = destinations.filter(pk__in=only) if only is not None else destinations
    Delivery.objects.bulk_create(
        Delivery(notification=notification, destination=destination)
        for destination in destinations
        if only is not None or event in destination.events
    )
    return notification


def resend(deliveries) -> int:
    """Staff: queue dead (or already sent) messages again, as new, to their destinations."""
    return deliveries.exclude(status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=None,
        solo=False,
        use_fallback=False,
        sent_at=None,
        last_error="",
    )
