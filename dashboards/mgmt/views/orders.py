"""Staff's orders: the list, the CSV export, an order's page, and the commands on an order."""

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from licenses import commands as license_commands
from orders import amounts, commands
from orders.models import Order
from shop.money import format_money

from ..access import find_order, requires
from ..confirm import Confirm, command_view
from ..export import csv_lines, file_name
from ..forms import CompleteForm, RefundForm
from ..listing import filter_choices, orders_list
from ..order_page import order_context
from ..search import criteria_from


@requires("orders.view_order", "reading orders")
@vary_on_headers("HX-Request")
@require_GET
def orders(request: HttpRequest) -> HttpResponse:
    """The list, or for htmx's poll only its rows (new orders appear at the top); dates that
    cannot be applied are a 400 showing the list without them and saying why."""
    return _orders_page(request, criteria_from(request.GET))


def _orders_page(request: HttpRequest, criteria) -> HttpResponse:
    template = "_orders_table.html" if request.htmx else "orders.html"
    status = 400 if criteria.problems else 200
    context = {**orders_list(criteria), "can_export": commands.export.permitted(request.user)}
    if not request.htmx:  # the poll redraws the rows only
        context["choices"] = filter_choices()
    return render(request, f"dashboards/mgmt/{template}", context, status=status)


@requires("orders.export_orders", "exporting orders (every customer's email is in the file)")
@require_GET
def export(request: HttpRequest) -> HttpResponse:
    criteria = criteria_from(request.GET)
    if criteria.problems:  # said on a page before anything streams, not as a broken download
        return _orders_page(request, criteria)
    described = "filters: " + (request.GET.urlencode() or "none")
    zone = timezone.get_current_timezone()  # the member's (accounts.time_zones)
    lines = commands.export.run_export(
        by=request.user, lines=csv_lines(criteria, zone=zone), described=described
    )
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    name = file_name(criteria, timezone.localdate())
    response["Content-Disposition"] = content_disposition_header(True, name)
    return response


@requires("orders.view_order", "reading orders")
@vary_on_headers("HX-Request")
@require_GET
def order(request: HttpRequest, number: str) -> HttpResponse:
    template = "_order.html" if request.htmx else "order.html"
    return render(
        request, f"dashboards/mgmt/{template}", order_context(find_order(number), request.user)
    )


def _order_page(request: HttpRequest, order: Order) -> str:
    return reverse("mgmt:order", args=[order.number])


def _money(order: Order, cents: int) -> str:
    return format_money(cents, order.currency)


def _found(number: str) -> Order:
    return find_order(number)


complete = command_view(
    Confirm(
        command=commands.complete,
        find=_found,
        form=CompleteForm,
        title=lambda order: "Complete this order?",
        lines=lambda order: [
            f"Order {order.number} ({_money(order, order.total_cents)}, {order.email}) is "
            "recorded as paid outside Stripe.",
            "Its open Checkout Session is closed first, so the customer cannot pay twice.",
            "Licenses are issued and the keys email is sent to the customer.",
        ],
        done=lambda order, result: f"Order {order.number} is completed.",
        back=_order_page,
        button="Complete the order",
        order=lambda order: order,
    )
)


refund = command_view(
    Confirm(
        command=commands.refund,
        find=_found,
        form=RefundForm,
        title=lambda order: f"Refund order {order.number}?",
        lines=lambda order: [
            "Stripe returns the amount you type (at most "
            f"{_money(order, amounts.refundable(order))}) to the customer's card.",
            "A refund of all that is left makes the order refunded and revokes its licenses; "
            "a partial refund keeps them, but for those you tick.",
            "Stripe takes one refund per click: a second click, or a second tab, is refused.",
        ],
        done=lambda order, refund: (
            f"Refunded {_money(order, refund.amount_cents)} on order {order.number}."
        ),
        back=_order_page,
        order=lambda order: order,
    )
)


def _payment_link(request: HttpRequest, order: Order, link: str) -> HttpResponse:
    return render(request, "dashboards/mgmt/payment_link.html", {"order": order, "link": link})


retry = command_view(
    Confirm(
        command=commands.retry,
        find=_found,
        title=lambda order: "Retry this order?",
        lines=lambda order: [
            f"The failed order {order.number} gets a new attempt and a new Checkout Session.",
            f"You get the payment link to send to {order.email} (the shop does not email it).",
        ],
        done=lambda order, link: "",
        after=_payment_link,
        back=_order_page,
        button="Create a new payment link",
        order=lambda order: order,
    )
)


resend_keys = command_view(
    Confirm(
        command=license_commands.resend_order_keys,
        find=_found,
        title=lambda order: "Resend the keys?",
        lines=lambda order: [f"The email with this order's keys is sent again to {order.email}."],
        done=lambda order, result: f"The keys email is queued for {order.email}.",
        back=_order_page,
        order=lambda order: order,
    )
)


settle = command_view(
    Confirm(
        command=commands.settle,
        find=_found,
        title=lambda order: "Mark the failed refund settled?",
        lines=lambda order: [
            "A refund of this order failed after Stripe counted it.",
            "Mark it settled once the customer got the money back another way; no money moves.",
        ],
        done=lambda order, result: f"Order {order.number} is no longer flagged.",
        back=_order_page,
        button="Mark settled",
        order=lambda order: order,
    )
)


def _test_dispute(command, lines: list[str], done: str):
    return command_view(
        Confirm(
            command=command,
            find=_found,
            title=lambda order: f"TEST MODE: {command.label.lower()}?",
            lines=lambda order: [*lines, "Test mode only: no bank and no money are involved."],
            done=lambda order, result: done,
            back=_order_page,
            order=lambda order: order,
        )
    )


open_test_dispute = _test_dispute(
    commands.open_test_dispute,
    [
        "The test gateway opens a chargeback on this payment: the order becomes disputed and its "
        "licenses are suspended, as Stripe's events would make them."
    ],
    "A test dispute is open.",
)
close_test_dispute_won = _test_dispute(
    commands.close_test_dispute_won,
    ["The open dispute closes as won: the order is completed again, its licenses active."],
    "The test dispute is closed as won.",
)
close_test_dispute_lost = _test_dispute(
    commands.close_test_dispute_lost,
    ["The open dispute closes as lost: the order is refunded (chargeback), its licenses revoked."],
    "The test dispute is closed as lost.",
)
raise_test_fraud_warning = _test_dispute(
    commands.raise_test_fraud_warning,
    [
        "The test gateway raises a Stripe Radar early fraud warning (made with a stolen card) on"
        " this payment: the order is flagged, staff are told on Discord, and with"
        " STRIPE_REFUND_ON_FRAUD_WARNING on, the refund worker refunds it in full."
    ],
    "A test fraud warning was raised.",
)
open_test_review = _test_dispute(
    commands.open_test_review,
    [
        "The test gateway opens a Radar review of this payment: its licenses are held until it closes."
    ],
    "A test review is open.",
)
approve_test_review = _test_dispute(
    commands.approve_test_review,
    ["The open review closes as approved: the licenses it held work again."],
    "The test review is approved.",
)
