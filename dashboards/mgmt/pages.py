"""Staff's overview, notifications, Stripe events and license pools."""

from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from licenses.models import License, LicenseStatus
from licenses.pool import parse_keys
from notifications.models import Delivery, DeliveryStatus, Destination
from orders.models import EventOutcome, StripeEvent
from orders.views import SeeOther

from . import actions
from .access import staff_only
from .forms import ImportKeysForm
from .listing import query
from .overview import overview as overview_context
from .overview import pool_stock

LOG_SIZE = 50
# The events staff look at: those the shop stored without changing an order.
EVENT_FILTERS = {
    "unknown_order": ("Unknown order", Q(outcome=EventOutcome.UNKNOWN_ORDER)),
    "unhandled": ("Unhandled type", Q(outcome=EventOutcome.UNHANDLED)),
    "livemode_mismatch": ("Livemode mismatch", Q(outcome=EventOutcome.LIVEMODE_MISMATCH)),
    "not_applied": ("Could not be applied", Q(detail__startswith="could not be applied")),
}


@staff_only
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboards/mgmt/overview.html", overview_context())


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


@staff_only
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
    params = {"status": status} if status in DeliveryStatus.values else {}
    base = reverse("mgmt:notifications")
    context = {
        "destinations": destinations,
        "deliveries": rows[:LOG_SIZE],
        "status": status,
        "statuses": [("", "All"), *DeliveryStatus.choices],
        "tab_urls": {s: base + query({}, status=s) for s in ["", *DeliveryStatus.values]},
        "next_url": base + query(params, before=str(rows[LOG_SIZE - 1].pk))
        if len(rows) > LOG_SIZE
        else "",
    }
    return render(request, "dashboards/mgmt/notifications.html", context)


def _destination_action(kind: str):
    @staff_only
    @require_http_methods(["GET", "POST"])
    def view(request: HttpRequest, pk: int) -> HttpResponse:
        destination = get_object_or_404(Destination, pk=pk)
        back = reverse("mgmt:notifications")
        if request.method == "POST":
            try:
                if kind == "test":
                    actions.test_destination(destination, user=request.user)
                else:
                    actions.switch_destination(
                        destination, user=request.user, enabled=kind == "enable"
                    )
            except actions.ActionRefused as refused:
                messages.error(request, str(refused))
            else:
                messages.success(request, DONE[kind].format(destination))
            return SeeOther(back)
        context = {
            "title": f"{kind.capitalize()} {destination}?",
            "lines": [CONFIRM[kind].format(destination)],
            "button": kind.capitalize() if kind != "test" else "Send a test message",
            "back": back,
        }
        return render(request, "dashboards/mgmt/confirm.html", context)

    view.__name__ = f"{kind}_destination"
    return view


CONFIRM = {
    "test": "A test message is queued for {}; the delivery worker sends it within seconds, and "
    "its outcome shows in the log below.",
    "enable": "{} gets new messages again (and those it kept while Discord refused it).",
    "disable": "{} gets no new messages until it is enabled again.",
}
DONE = {
    "test": "A test message is queued for {}.",
    "enable": "{} is enabled.",
    "disable": "{} is disabled.",
}
test_destination = _destination_action("test")
enable_destination = _destination_action("enable")
disable_destination = _destination_action("disable")


@staff_only
@require_GET
def events(request: HttpRequest) -> HttpResponse:
    chosen = request.GET.get("outcome", "")
    rows = StripeEvent.objects.select_related("order").defer("payload")
    if chosen in EVENT_FILTERS:
        rows = rows.filter(EVENT_FILTERS[chosen][1])
    base = reverse("mgmt:events")
    context = {
        "events": list(rows.order_by("-received_at", "id")[:100]),
        "filters": [("", "All", base)]
        + [
            (key, label, base + query({}, outcome=key)) for key, (label, _) in EVENT_FILTERS.items()
        ],
        "chosen": chosen,
    }
    return render(request, "dashboards/mgmt/events.html", context)


def _licenses_context(form: ImportKeysForm) -> dict:
    waiting = License.objects.filter(status=LicenseStatus.PENDING).select_related(
        "order", "product"
    )
    return {
        "stock": pool_stock(),
        "waiting": list(waiting.order_by("created_at", "id")[:100]),
        "form": form,
    }


@staff_only
@require_GET
def licenses(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboards/mgmt/licenses.html", _licenses_context(ImportKeysForm()))


@staff_only
@require_http_methods(["GET", "POST"])
def import_keys(request: HttpRequest) -> HttpResponse:
    """Keys pasted or uploaded (text or CSV), duplicates counted and skipped; licenses waiting
    for a key get one, oldest first."""
    form = ImportKeysForm(*([request.POST, request.FILES] if request.method == "POST" else []))
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            keys = parse_keys(upload.read() if upload else form.cleaned_data["keys"])
        except UnicodeDecodeError:
            form.add_error("file", "The file is not UTF-8 text.")
        else:
            product = form.cleaned_data["product"]
            imported, skipped = actions.import_pool_keys(product, keys, user=request.user)
            messages.success(
                request,
                f"{product}: imported {imported} key(s), skipped {skipped} duplicate(s) or blank(s).",
            )
            return SeeOther(reverse("mgmt:licenses"))
    status = 400 if request.method == "POST" else 200
    return render(request, "dashboards/mgmt/licenses.html", _licenses_context(form), status=status)
