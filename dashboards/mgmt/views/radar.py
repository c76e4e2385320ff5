"""/mgmt/fraud-warnings/: what Stripe Radar said, newest first: early fraud warnings (the
actionable ones first to look at) and reviews (the open ones hold keys)."""

from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from orders.models import FraudWarning, Review, Status

from ..access import requires
from ..listing import query

# What staff may want to see first: a warning still actionable on an order not refunded yet.
WARNING_FILTERS = {
    "actionable": (
        "Actionable",
        Q(actionable=True) & ~Q(order__status=Status.REFUNDED),
    ),
    "reviews": ("Open reviews", None),
}
SHOWN = 100


@requires("orders.view_order", "reading orders")
@require_GET
def fraud_warnings(request: HttpRequest) -> HttpResponse:
    chosen = request.GET.get("show", "")
    chosen = chosen if chosen in WARNING_FILTERS else ""
    warnings = FraudWarning.objects.select_related("order").order_by("-created_at", "-id")
    reviews = Review.objects.select_related("order").order_by("-created_at", "-id")
    if chosen == "reviews":
        warnings, reviews = warnings.none(), reviews.filter(open=True)
    elif chosen:
        warnings, reviews = warnings.filter(WARNING_FILTERS[chosen][1]), reviews.none()
    base = reverse("mgmt:fraud_warnings")
    context = {
        "warnings": list(warnings[:SHOWN]),
        "reviews": list(reviews[:SHOWN]),
        "filters": [("", "All", base)]
        + [(key, label, base + query({}, show=key)) for key, (label, _) in WARNING_FILTERS.items()],
        "chosen": chosen,
        "shown": SHOWN,
    }
    return render(request, "dashboards/mgmt/fraud_warnings.html", context)
