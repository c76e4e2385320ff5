"""Staff's orders: the list, the CSV export, an order's page, and the actions on it. Every action
is a GET that confirms (saying exactly what will happen) and a POST that does it."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from licenses.models import License
from notifications.models import Delivery
from orders.models import Order
from orders.money import format_money
from orders.views import SeeOther

from . import actions
from .access import staff_only, with_order
from .export import csv_lines
from .forms import CompleteForm, RefundForm
from .listing import orders_list
from .order_page import order_context
from .search import criteria_from

GET_POST = require_http_methods(["GET", "POST"])


@staff_only
@vary_on_headers("HX-Request")
@require_GET
def orders(request: HttpRequest) -> HttpResponse:
    """The list, or for htmx's poll only its rows (new orders appear at the top); dates that
    cannot be applied are a 400 showing the list without them and saying why."""
    criteria = criteria_from(request.GET)
    return _orders_page(request, criteria)


def _orders_page(request: HttpRequest, criteria) -> HttpResponse:
    template = "_orders_table.html" if request.htmx else "orders.html"
    status = 400 if criteria.problems else 200
    return render(request, f"dashboards/mgmt/{template}", orders_list(criteria), status=status)


@staff_only
@require_GET
def export(request: HttpRequest) -> HttpResponse:
    criteria = criteria_from(request.GET)
    if criteria.problems:  # said on a page before anything streams, not as a broken download
        return _orders_page(request, criteria)
    response = StreamingHttpResponse(csv_lines(criteria), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="orders.csv"'
    return response


@staff_only
@vary_on_headers("HX-Request")
@require_GET
@with_order
def order(request: HttpRequest, order: Order) -> HttpResponse:
    template = "_order.html" if request.htmx else "order.html"
    return render(request, f"dashboards/mgmt/{template}", order_context(order))


def _back(order: Order) -> SeeOther:
    return SeeOther(reverse("mgmt:order", args=[order.number]))


def _confirm(request, order: Order | None, *, title: str, lines: list[str], button: str,
             form=None, danger: bool = False, back: str = "") -> HttpResponse:  # fmt: skip
    context = {
        "order": order,
        "title": title,
        "lines": lines,
        "button": button,
        "form": form,
        "danger": danger,
        "back": back or (reverse("mgmt:order", args=[order.number]) if order else ""),
    }
    status = 400 if request.method == "POST" else 200
    return render(request, "dashboards/mgmt/confirm.html", context, status=status)


def _done(request, do, success: str) -> bool:
    try:
        do()
    except actions.ActionRefused as refused:
        messages.error(request, str(refused))
        return False
    messages.success(request, success)
    return True


@staff_only
@GET_POST
@with_order
def complete(request: HttpRequest, order: Order) -> HttpResponse:
    form = CompleteForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        note = form.cleaned_data["note"]
        _done(
            request,
            lambda: actions.complete(order, user=request.user, note=note),
            f"Order {order.number} is completed.",
        )
        return _back(order)
    total = format_money(order.total_cents, order.currency)
    lines = [
        f"Order {order.number} ({total}, {order.email}) is recorded as paid outside Stripe.",
        "Its open Checkout Session is closed first, so the customer cannot pay twice.",
        "Licenses are issued and the keys email is sent to the customer.",
    ]
    return _confirm(request, order, title="Complete this order?", lines=lines,
                    button="Complete the order", form=form)  # fmt: skip


@staff_only
@GET_POST
@with_order
def refund(request: HttpRequest, order: Order) -> HttpResponse:
    form = RefundForm(request.POST if request.method == "POST" else None, order=order)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        amount = format_money(data["amount"], order.currency)
        _done(
            request,
            lambda: actions.refund(
                order,
                user=request.user,
                amount_cents=data["amount"],
                reason=data["reason"],
                seen_returned=data["seen_returned"],
            ),
            f"Refunded {amount} on order {order.number}.",
        )
        return _back(order)
    if request.method == "GET" and not form.left:
        messages.error(request, f"Nothing is left to refund on order {order.number}.")
        return _back(order)
    left = format_money(form.left, order.currency)
    lines = [
        f"Stripe returns the amount you type (at most {left}) to the customer's card.",
        "A refund of all that is left makes the order refunded and revokes its licenses; "
        "a partial refund keeps them.",
        "Stripe takes one refund per click: a second click, or a second tab, is refused.",
    ]
    return _confirm(request, order, title=f"Refund order {order.number}?", lines=lines,
                    button="Refund", form=form, danger=True)  # fmt: skip


@staff_only
@GET_POST
@with_order
def retry(request: HttpRequest, order: Order) -> HttpResponse:
    if request.method == "POST":
        try:
            link = actions.retry(order, user=request.user)
        except actions.ActionRefused as refused:
            messages.error(request, str(refused))
            return _back(order)
        context = {"order": order, "link": link}
        return render(request, "dashboards/mgmt/payment_link.html", context)
    lines = [
        f"The failed order {order.number} gets a new attempt and a new Checkout Session.",
        f"You get the payment link to send to {order.email} (the shop does not email it).",
    ]
    return _confirm(request, order, title="Retry this order?", lines=lines,
                    button="Create a new payment link")  # fmt: skip


@staff_only
@GET_POST
@with_order
def resend_keys(request: HttpRequest, order: Order) -> HttpResponse:
    if request.method == "POST":
        _done(
            request,
            lambda: actions.resend_order_keys(order, user=request.user),
            f"The keys email is queued for {order.email}.",
        )
        return _back(order)
    lines = [f"The email with this order's keys is sent again to {order.email}."]
    return _confirm(request, order, title="Resend the keys?", lines=lines, button="Resend keys")


@staff_only
@GET_POST
@with_order
def settle(request: HttpRequest, order: Order) -> HttpResponse:
    if request.method == "POST":
        _done(
            request,
            lambda: actions.settle(order, user=request.user),
            f"Order {order.number} is no longer flagged.",
        )
        return _back(order)
    lines = [
        "A refund of this order failed after Stripe counted it.",
        "Mark it settled once the customer got the money back another way; no money moves.",
    ]
    return _confirm(request, order, title="Mark the failed refund settled?", lines=lines,
                    button="Mark settled")  # fmt: skip


def _license(order: Order, pk: int) -> License:
    return get_object_or_404(License.objects.select_related("product", "order"), pk=pk, order=order)


def _license_view(suspend: bool):
    verb = "Suspend" if suspend else "Reinstate"

    @staff_only
    @GET_POST
    @with_order
    def view(request: HttpRequest, order: Order, pk: int) -> HttpResponse:
        license = _license(order, pk)
        if request.method == "POST":
            do = lambda: actions.change_license(license, user=request.user, suspend=suspend)  # noqa: E731
            _done(request, do, f"{verb}d the {license.product} license ({license.masked_key}).")
            return _back(order)
        lines = [
            f"The {license.product} license (key {license.masked_key or 'not issued'}) of order "
            f"{order.number} is {'suspended: the key stops validating' if suspend else 'active again'}.",
            "A won dispute never lifts a staff suspension." if suspend else
            "Only a suspended license can be reinstated.",
        ]  # fmt: skip
        return _confirm(request, order, title=f"{verb} this license?", lines=lines, button=verb)

    view.__name__ = verb.lower() + "_license"
    return view


suspend_license = _license_view(True)
reinstate_license = _license_view(False)


@staff_only
@require_POST
@with_order
def reveal_key(request: HttpRequest, order: Order, pk: int) -> HttpResponse:
    """A key is shown only on this POST, which is recorded with who asked."""
    license = _license(order, pk)
    key = actions.reveal_key(license, user=request.user)
    context = {"order": order, "license": license, "key": key}
    return render(request, "dashboards/mgmt/key.html", context)


@staff_only
@GET_POST
def resend_delivery(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = get_object_or_404(
        Delivery.objects.select_related("destination", "notification__order"), pk=pk
    )
    order = delivery.notification.order
    back = request.GET.get("back") == "log"
    target = reverse("mgmt:notifications") if back or order is None else ""
    if request.method == "POST":
        _done(
            request,
            lambda: actions.resend_delivery(delivery, user=request.user),
            f"The message is queued again for {delivery.destination}.",
        )
        return SeeOther(target) if target else _back(order)
    lines = [
        f"The {delivery.notification.event} message is queued again for "
        f"{delivery.destination}, as new; the worker sends it.",
    ]
    return _confirm(request, order, title="Send this message again?", lines=lines,
                    button="Send again", back=target)  # fmt: skip
