from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ..access import requires
from ..overview import overview as overview_context


@requires("orders.view_order", "reading orders")
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboards/mgmt/overview.html", overview_context())
