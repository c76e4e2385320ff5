"""Compact mode: one Discord message per order and destination, edited in place as the order
moves (DESIGN, "Discord notifications").

The worker claims a compact destination's oldest pending delivery as it claims any other. When
it is an order's event, every pending event of that order for the destination goes with it in
one request: a post of the order's message when the destination has none where it now posts,
else an edit of that message. Either shows the order as it is now (the latest event's embed and
colour) and the history of its events; every delivery it carries is recorded as sent by it. The
destination's lease is what keeps two workers from editing one message at once: a destination's
messages go through one worker at a time, in order, under the same limits as every message.
"""

from dataclasses import dataclass
from typing import Any

from .discord import Answer
from .embeds import LIMITS, MAX_FIELDS, MESSAGE_TOTAL, TITLES, fit, when
from .events import Event
from .models import (
    Delivery,
    DeliveryStatus,
    Destination,
    DestinationMode,
    Notification,
    OrderMessage,
)

# What moves an order: every event about one. License events (stock, activations) and test
# messages stay messages of their own, as in every-event mode.
OWN_MESSAGE = {Event.LICENSE_STOCK_LOW, Event.LICENSE_ACTIVATION_LIMIT_REACHED, Event.TEST}
ORDER_EVENTS = [event for event in Event if event not in OWN_MESSAGE]
HISTORY = "History"
MAX_EVENTS = 100  # pending events of one order carried by one request; more go in the next


@dataclass
class OrderPlan:
    """What one request does for an order: edit `edit_id` (or post anew, "") to show `embed`."""

    order_id: int
    edit_id: str
    embed: dict[str, Any]


def folds(destination: Destination, delivery: Delivery) -> bool:
    notification = delivery.notification
    return (
        destination.mode == DestinationMode.COMPACT
        and notification.order_id is not None
        and notification.event in ORDER_EVENTS
    )


def order_deliveries(destination: Destination, head: Delivery) -> list[Delivery]:
    """`head` and the order's later pending events for the destination, oldest first."""
    pending = destination.deliveries.filter(
        status=DeliveryStatus.PENDING,
        notification__order_id=head.notification.order_id,
        notification__event__in=ORDER_EVENTS,
    )
    return list(pending.select_related("notification").order_by("id")[:MAX_EVENTS])


def plan(destination: Destination, deliveries: list[Delivery]) -> OrderPlan | None:
    """For a claim of an order's events: the message to edit, if the order has one where the
    destination posts now (a message is found only through its webhook, in its thread), and
    what it should show. None for a claim sent as in every-event mode."""
    if not folds(destination, deliveries[0]):
        return None
    order_id = deliveries[0].notification.order_id
    message = OrderMessage.objects.filter(
        order_id=order_id,
        destination=destination,
        webhook_id=destination.webhook_id,
        thread_id=destination.thread_id,
    ).first()
    return OrderPlan(
        order_id, message.message_id if message else "", compact_embed(destination, order_id)
    )


def compact_embed(destination: Destination, order_id: int) -> dict[str, Any]:
    """The order as its message shows it: the latest event's embed (title, colour, link,
    fields), then the history of the events the destination got, within Discord's limits."""
    events = Notification.objects.filter(
        order_id=order_id, event__in=ORDER_EVENTS, deliveries__destination=destination
    ).order_by("id")
    rows = list(events.values_list("pk", "event", "created_at"))
    latest = Notification.objects.get(pk=rows[-1][0]).embed
    history = _history([f"{when(at)} {TITLES.get(event, event)}" for _, event, at in rows])
    # Room for the history and for the link, which moves into the description where Discord
    # refuses it as the embed's url (embeds.for_message): fitting then never cuts the history.
    room = MESSAGE_TOTAL - len(HISTORY) - len(history) - len(latest.get("url", "")) - 1
    embed = fit({**latest, "fields": latest.get("fields", [])[: MAX_FIELDS - 1]}, room)
    embed["fields"].append({"name": HISTORY, "value": history, "inline": False})
    return embed


def _history(lines: list[str]) -> str:
    """One line per event; past a field's limit, the first and as many of the latest as fit,
    with how many were left out between them."""
    if len("\n".join(lines)) <= LIMITS["field_value"]:
        return "\n".join(lines)
    first, rest = lines[0], lines[1:]
    room = LIMITS["field_value"] - len(first) - len(_gap(len(rest))) - 2
    kept: list[str] = []
    for line in reversed(rest):
        room -= len(line) + 1
        if room < 0:
            break
        kept.insert(0, line)
    return "\n".join([first, _gap(len(rest) - len(kept)), *kept])


def _gap(count: int) -> str:
    return f"… {count} earlier event{'s' if count != 1 else ''}"


def remember(destination: Destination, plan: OrderPlan, answer: Answer) -> None:
    """After Discord's answer, in the worker's transaction: the order's message is the one just
    posted (or still the one edited); one Discord no longer finds (deleted) is forgotten, so the
    next send posts a new one. `destination` is as it was claimed: where the request went."""
    where = {"order_id": plan.order_id, "destination": destination}
    if answer.ok:
        OrderMessage.objects.update_or_create(
            **where,
            defaults={
                "message_id": answer.message_id or plan.edit_id,
                "webhook_id": destination.webhook_id,
                "thread_id": destination.thread_id,
            },
        )
    elif answer.message_gone and plan.edit_id:
        OrderMessage.objects.filter(**where, message_id=plan.edit_id).delete()
