"""Staff's Discord: destinations with their health, the delivery log, and the commands on them."""

from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from notifications import commands, compact
from notifications.models import Delivery, DeliveryStatus, Destination, Notification

from ..access import requires
from ..confirm import Confirm, command_view
from ..listing import query

LOG_SIZE = 50


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() and len(text) < 19 else None


@requires("notifications.view_delivery", "reading Discord deliveries")
@require_GET
def notifications(request: HttpRequest) -> HttpResponse:
    """Destinations with their health, and the delivery log (newest first, keyset pages)."""
    destinations = Destination.objects.annotate(
        backlog=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.PENDING)),
        dead=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.DEAD)),
    ).order_by("name")
    status = request.GET.get("status", "")
    log = Delivery.objects.select_related("notification__order", "destination").order_by("-id")
    if status in DeliveryStatus.values:
        log = log.filter(status=status)
    before = _int(request.GET.get("before"))
    if before:
        log = log.filter(pk__lt=before)
    rows = list(log[: LOG_SIZE + 1])
    # Recorded for no destination (none yet, or none subscribed): previewed all the same.
    unsent = (
        Notification.objects.filter(deliveries__isnull=True)
        .select_related("order")
        .order_by("-id")[:LOG_SIZE]
        if not status and not before
        else []
    )
    params = {"status": status} if status in DeliveryStatus.values else {}
    base = reverse("mgmt:notifications")
    user = request.user
    context = {
        "destinations": [(d, _buttons(d, user)) for d in destinations],
        "deliveries": rows[:LOG_SIZE],
        "unsent": unsent,
        "can_resend": commands.resend_delivery.permitted(user),
        "status": status,
        "statuses": [("", "All"), *DeliveryStatus.choices],
        "tab_urls": {s: base + query({}, status=s) for s in ["", *DeliveryStatus.values]},
        "next_url": base + query(params, before=str(rows[LOG_SIZE - 1].pk))
        if len(rows) > LOG_SIZE
        else "",
    }
    return render(request, "dashboards/mgmt/notifications.html", context)


DESTINATION_COMMANDS = [
    (commands.test_destination, "mgmt:test_destination"),
    (commands.enable_destination, "mgmt:enable_destination"),
    (commands.disable_destination, "mgmt:disable_destination"),
]


def _buttons(destination: Destination, user) -> list:
    buttons = (
        command.button(destination, by=user, url=reverse(url, args=[destination.pk]))
        for command, url in DESTINATION_COMMANDS
    )
    return [button for button in buttons if button]


def _destination(pk: int) -> Destination:
    return get_object_or_404(Destination, pk=pk)


def _log(request: HttpRequest, destination) -> str:
    return reverse("mgmt:notifications")


test_destination = command_view(
    Confirm(
        command=commands.test_destination,
        find=_destination,
        title=lambda destination: f"Test {destination}?",
        lines=lambda destination: [
            f"A test message is queued for {destination}; the delivery worker sends it within "
            "seconds, and its outcome shows in the log below."
        ],
        done=lambda destination, result: f"A test message is queued for {destination}.",
        back=_log,
    )
)
enable_destination = command_view(
    Confirm(
        command=commands.enable_destination,
        find=_destination,
        title=lambda destination: f"Enable {destination}?",
        lines=lambda destination: [
            f"{destination} gets new messages again (and those it kept while Discord refused it)."
        ],
        done=lambda destination, result: f"{destination} is enabled.",
        back=_log,
    )
)
disable_destination = command_view(
    Confirm(
        command=commands.disable_destination,
        find=_destination,
        title=lambda destination: f"Disable {destination}?",
        lines=lambda destination: [
            f"{destination} gets no new messages until it is enabled again."
        ],
        done=lambda destination, result: f"{destination} is disabled.",
        back=_log,
    )
)


def _delivery(pk: int) -> Delivery:
    return get_object_or_404(
        Delivery.objects.select_related("destination", "notification__order"), pk=pk
    )


def _resend_words(delivery: Delivery) -> str:
    queued = f"The {delivery.notification.event} message is queued again for {delivery.destination}"
    if compact.folds(delivery.destination, delivery):
        return (
            f"{queued}: the worker edits the order's message there to show the order as it is "
            "now (or posts a new one if that message was deleted)."
        )
    return f"{queued}, as new; the worker sends it."


def _after_resend(request: HttpRequest, delivery: Delivery) -> str:
    order = delivery.notification.order
    if request.GET.get("back") == "log" or order is None:
        return reverse("mgmt:notifications")
    return reverse("mgmt:order", args=[order.number])


resend_delivery = command_view(
    Confirm(
        command=commands.resend_delivery,
        find=_delivery,
        title=lambda delivery: "Send this message again?",
        lines=lambda delivery: [_resend_words(delivery)],
        done=lambda delivery, result: f"The message is queued again for {delivery.destination}.",
        back=_after_resend,
        order=lambda delivery: delivery.notification.order,
    )
)
