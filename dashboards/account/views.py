"""Customers' pages. Order pages answer 404 to anyone whose email did not buy the order, signed
in or not, so a URL never tells whether an order exists; only the list sends strangers to sign in."""

import functools
import math

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.decorators import login_not_required, login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from accounts.second_factor import SIGNED_IN_BY_LINK
from audit.commands import Refused
from licenses import commands as license_commands
from licenses.models import Activation, License
from orders import commands as order_commands
from orders.models import Order
from shop.proxies import client_address
from shop.redirects import SeeOther

from .forms import LinkRequestForm, safe_next
from .links import BadLink, LinkNotSent, Throttled, check_link, request_link, use_link
from .orders import customer_orders, order_page, orders_page

BACKEND = "django.contrib.auth.backends.ModelBackend"


@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    # No email from the query string: a URL with an email in it ends up in access logs and
    # browser histories. Pages that know the address post it (the receipt, "ask for a new link").
    initial = {"next": safe_next(request.GET.get("next", ""))}
    form = LinkRequestForm(request.POST or None, initial=initial)
    if request.method == "GET" or not form.is_valid():
        status = 400 if request.method == "POST" else 200
        return render(request, "dashboards/account/login.html", {"form": form}, status=status)
    email = form.cleaned_data["email"]
    try:
        sent = request_link(
            email=email, next_url=form.cleaned_data["next"], client=client_address(request)
        )
    except Throttled as refused:
        response = render(
            request,
            "dashboards/account/login.html",
            {"form": form, "problem": refused.words},
            status=429,
        )
        response["Retry-After"] = str(refused.retry_after)
        return response
    except LinkNotSent:
        problem = "We could not send the email just now. Please try again in a few minutes."
        context = {"form": form, "problem": problem}
        return render(request, "dashboards/account/login.html", context, status=503)
    minutes = math.ceil(settings.ACCOUNT_LINK_MAX_AGE / 60)
    context = {"email": email, "sent": sent, "minutes": minutes}
    return render(request, "dashboards/account/link_sent.html", context)


@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def link(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows whose link it is and a button; the POST signs in. Mail scanners that open every
    link in a message must not spend it, and nobody is signed in without seeing as whom."""
    try:
        if request.method == "POST":
            user, claim = use_link(token)
        else:
            claim, _user = check_link(token)
    except BadLink as bad:
        form = LinkRequestForm(initial={"email": bad.email})
        context = {"problem": bad.words, "form": form}
        return render(request, "dashboards/account/bad_link.html", context, status=400)
    if request.method == "GET":
        return render(request, "dashboards/account/link_confirm.html", {"email": claim.email})
    auth_login(request, user, backend=BACKEND)
    # Marked, so that this session never reaches a staff page should the account become staff.
    request.session[SIGNED_IN_BY_LINK] = True
    messages.success(request, f"Signed in as {user.email}.")
    return SeeOther(safe_next(claim.next_url) or reverse("account:orders"))


@login_not_required
@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    auth_logout(request)
    messages.success(request, "You are signed out.")
    return SeeOther(reverse("orders:catalog"))


@login_required(login_url="account:login")
@never_cache
@require_GET
def orders(request: HttpRequest) -> HttpResponse:
    page, rows = orders_page(user=request.user, page_number=request.GET.get("page"))
    return render(request, "dashboards/account/orders.html", {"page": page, "rows": rows})


def customer_order(view):
    """Resolve the URL's order number among the signed-in customer's own orders; any other number
    (someone else's, made up, or nobody signed in) gets the same 404 page."""

    @functools.wraps(view)
    def with_order(request: HttpRequest, number: str, **kwargs) -> HttpResponse:
        order = customer_orders(request.user).filter(number=number.upper()).first()
        if order is None:
            return render(request, "dashboards/account/order_missing.html", status=404)
        return view(request, order, **kwargs)

    return with_order


@login_not_required
@never_cache
@vary_on_headers("HX-Request")
@require_GET
@customer_order
def order(request: HttpRequest, order: Order) -> HttpResponse:
    """The page, or for htmx's poll only its live part (which stops polling once not pending)."""
    template = "_order.html" if request.htmx else "order.html"
    return render(request, f"dashboards/account/{template}", order_page(order, request.user))


@login_not_required
@require_POST
@customer_order
def order_pay_again(request: HttpRequest, order: Order) -> HttpResponse:
    try:
        return SeeOther(order_commands.pay_again.run(order, by=request.user))
    except Refused as refused:
        messages.error(request, _for_customer(refused))
    return SeeOther(reverse("account:order", args=[order.number]))


order_pay_again.command = order_commands.pay_again


@login_not_required
@require_POST
@customer_order
def order_resend_keys(request: HttpRequest, order: Order) -> HttpResponse:
    try:
        license_commands.resend_my_keys.run(order, by=request.user)
    except Refused as refused:
        messages.error(request, refused.words)
    else:
        messages.success(request, f"Your keys are on their way to {order.email}.")
    return SeeOther(reverse("account:order", args=[order.number]))


order_resend_keys.command = license_commands.resend_my_keys


def _for_customer(refused: Refused) -> str:
    """A payment provider's refusal (it has a code) in the customer's words."""
    if refused.code:
        return f"The payment could not start: {refused.words.rstrip('.')}. Please try again soon."
    return refused.words


@login_not_required
@require_POST
@customer_order
def deactivate_device(request: HttpRequest, order: Order, device) -> HttpResponse:
    """Free one device's activation of this order's license (the customer's own, or a 404)."""
    activation = get_object_or_404(Activation, public_id=device, license__order=order)
    try:
        license_commands.deactivate_device.run(activation, by=request.user)
    except Refused as refused:
        messages.error(request, refused.words)
    else:
        messages.success(request, f"{activation.label or 'The device'} is deactivated.")
    return SeeOther(reverse("account:order", args=[order.number]))


deactivate_device.command = license_commands.deactivate_device


@login_not_required
@require_POST
@customer_order
def renew_license(request: HttpRequest, order: Order, license) -> HttpResponse:
    """A renewal order for this order's license, then its checkout."""
    found = get_object_or_404(
        License.objects.select_related("order", "product"), public_id=license, order=order
    )
    try:
        return SeeOther(license_commands.renew.run(found, by=request.user))
    except Refused as refused:
        messages.error(request, _for_customer(refused))
    return SeeOther(reverse("account:order", args=[order.number]))


renew_license.command = license_commands.renew
