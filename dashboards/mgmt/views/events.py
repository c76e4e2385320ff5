from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from orders.models import EventOutcome, StripeEvent

from ..access import requires
from ..listing import query

# The events staff look at: those the shop stored without changing an order.
EVENT_FILTERS = {
    "unknown_order": ("Unknown order", Q(outcome=EventOutcome.UNKNOWN_ORDER)),
    "payment_mismatch": ("Payment not for the order", Q(outcome=EventOutcome.PAYMENT_MISMATCH)),
    "unhandled": ("Unhandled type", Q(outcome=EventOutcome.UNHANDLED)),
    "livemode_mismatch": ("Livemode mismatch", Q(outcome=EventOutcome.LIVEMODE_MISMATCH)),
    "not_applied": ("Could not be applied", Q(detail__startswith="could not be applied")),
}


@requires("orders.view_stripeevent", "reading Stripe events")
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
