import logging
import math

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from shop.proxies import client_address
from shop.ratelimit import hit
from shop.redirects import SeeOther

from .checkout import (
    PaymentRefused,
    find_order,
    fulfil_session,
    open_checkout,
    place_order,
    start_checkout,
)
from .forms import BuyForm, TestCheckoutForm
from .gateways import GatewayError, get_gateway, is_offline
from .gateways.offline import TEST_TAX_PERCENT
from .history import order_history
from .models import LicenseKind, Product, Status
from .receipt import build_receipt, remember_buyer, shows_keys
from .webhooks import WebhookError, receive

log = logging.getLogger(__name__)


@login_not_required
@require_GET
def catalog(request: HttpRequest) -> HttpResponse:
    products = Product.objects.filter(active=True)
    return render(request, "orders/catalog.html", {"products": products, "form": BuyForm()})


@login_not_required
@require_POST
def checkout(request: HttpRequest, slug: str) -> HttpResponse:
    product = get_object_or_404(Product, slug=slug, active=True)
    form = BuyForm(request.POST, user=request.user)
    if not form.is_valid():
        context = {"products": Product.objects.filter(active=True), "form": form, "failed": product}
        return render(request, "orders/catalog.html", context, status=400)
    user = request.user if request.user.is_authenticated else None
    order = place_order(
        product=product,
        quantity=form.cleaned_data["quantity"],
        email=form.buyer_email(),
        user=user,
    )
    remember_buyer(request, order)
    try:
        url = start_checkout(order)
    except GatewayError as error:
        context = {"order": order, "message": error.message}
        return render(request, "orders/checkout_error.html", context, status=502)
    return SeeOther(url)


@login_not_required
@require_GET
def success(request: HttpRequest) -> HttpResponse:
    session_id = request.GET.get("session_id", "")
    if not session_id or "{" in session_id:
        context = {"message": "This link has no checkout session in it."}
        return render(request, "orders/problem.html", context, status=400)
    # Every visit asks Stripe: a client reloading in a loop must not spend the shop's API limit.
    window = settings.CHECKOUT_SUCCESS_WINDOW
    wait = hit(
        "checkout-success",
        client_address(request),
        limit=settings.CHECKOUT_SUCCESS_RATE,
        window=window,
    )
    if wait:
        return _too_many_visits(request, wait)
    try:
        order = fulfil_session(session_id)
    except PaymentRefused as refused:
        log.warning("success page: session refused for order %s", refused.order.number)
        context = {
            "message": "This payment cannot complete the order it names, so the order was left "
            "as it was. The shop has been told and will look into it; if you paid, you will "
            "hear from us."
        }
        return render(request, "orders/problem.html", context, status=409)
    except GatewayError as error:
        if error.code == "resource_missing":
            raise Http404("No such checkout session") from None
        return render(request, "orders/problem.html", {"message": error.message}, status=502)
    if order is None:
        raise Http404("No order for this checkout session")
    return SeeOther(reverse("orders:detail", args=[order.public_id]))


def _too_many_visits(request: HttpRequest, wait: int) -> HttpResponse:
    minutes = math.ceil(wait / 60)
    later = "in a minute" if minutes <= 1 else f"in {minutes} minutes"
    message = (
        "Too many visits to this page from your network. Your payment is not lost: "
        f"please try again {later}, or find the order in the email we send you."
    )
    response = render(request, "orders/problem.html", {"message": message}, status=429)
    response["Retry-After"] = str(wait)
    return response


@login_not_required
@require_GET
def cancel(request: HttpRequest, public_id: str) -> HttpResponse:
    order = find_order(public_id) or _not_found()
    expired = order.failure_code == "expired" and not order.is_paid
    return render(request, "orders/cancel.html", {"order": order, "expired": expired})


@login_not_required
@never_cache
@require_GET
def order_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    """The buyer's receipt, reached through the order's unguessable public id. Anyone holding the
    link (a forwarded email, a shared screen, a browser history) sees the receipt; the keys only
    the browser that bought or the signed-in buyer (receipts.shows_keys)."""
    order = find_order(public_id) or _not_found()
    items = order.line_items()
    checkout = open_checkout(order)
    keys = shows_keys(request, order)
    transitions, refunds = list(order.transitions.all()), list(order.refunds.all())
    context = {
        "order": order,
        "receipt": build_receipt(order),
        "sends_keys": any(item.product.license_kind != LicenseKind.NONE for item in items),
        "history": order_history(order, transitions=transitions, refunds=refunds),
        # Read through the reverse relation: `orders` imports nothing from `licenses`.
        "licenses": order.licenses.select_related("product").order_by("id") if keys else (),
        "waiting": order.licenses.filter(status="pending").select_related("product"),
        "checkout": checkout,
        "abandoned": order.status == Status.FAILED and order.failure_code == "expired",
        # An open checkout waits for the buyer, not for Stripe: nothing to refresh for.
        "refreshing": order.status == Status.PENDING and checkout is None,
    }
    return render(request, "orders/order_detail.html", context)


def _not_found():
    raise Http404("No such order")


@login_not_required
@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """200 for every event accepted (duplicates and ignored types too), 400 for a delivery we
    refuse, 413 for an oversized body; an exception in processing is a 500 so Stripe retries."""
    limit = settings.STRIPE_WEBHOOK_MAX_BYTES
    length = request.META.get("CONTENT_LENGTH") or ""
    if length.isdigit() and int(length) > limit:
        return JsonResponse({"error": "body too large"}, status=413)
    body = request.read(limit + 1)
    if len(body) > limit:
        return JsonResponse({"error": "body too large"}, status=413)
    try:
        event = receive(body, request.headers.get("Stripe-Signature"))
    except WebhookError as error:
        log.warning("stripe webhook refused: %s", error)
        return JsonResponse({"error": str(error)}, status=400)
    return JsonResponse({"received": True, "outcome": event.outcome})


@login_not_required
def test_checkout(request: HttpRequest, session_id: str) -> HttpResponse:
    """The TEST MODE checkout page of the offline gateway (404 when Stripe is configured)."""
    if not is_offline():
        raise Http404("The test gateway is off: Stripe is configured")
    gateway = get_gateway()
    try:
        session = gateway.retrieve_session(session_id)
    except GatewayError:
        raise Http404("No such checkout session") from None
    order = find_order(session["client_reference_id"]) or _not_found()
    form = TestCheckoutForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        action = form.cleaned_data["action"]
        try:
            if action == "apply_code":
                gateway.apply_promotion_code(session_id, form.cleaned_data["promotion_code"])
                return SeeOther(request.path)
            next_url = _act(gateway, session, action)  # each action is its own transaction
        except GatewayError as exc:
            error = exc.message
        else:
            if next_url:
                return SeeOther(next_url)
            session = gateway.retrieve_session(session_id)
            order.refresh_from_db()
            error = f"{order.failure_message} Try again or use another method."
    context = {
        "session": session,
        "order": order,
        "form": form,
        "error": error,
        "actions": TestCheckoutForm.ACTIONS,
        "tax_percent": TEST_TAX_PERCENT,
    }
    status = 400 if request.method == "POST" and not form.is_valid() else 200
    return render(request, "orders/test_checkout.html", context, status=status)


def _act(gateway, session: dict, action: str) -> str:
    success = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])
    if action == "pay":
        gateway.pay(session["id"])
    elif action in ("decline", "insufficient_funds"):
        gateway.decline(session["id"], code="card_declined" if action == "decline" else action)
        return ""
    elif action == "delayed_success":
        gateway.pay(session["id"], method="sepa_debit", outcome="succeeded")
    elif action == "delayed_failure":
        gateway.pay(session["id"], method="sepa_debit", outcome="failed")
    else:
        gateway.expire_session(session["id"])
        return session["cancel_url"]
    return success
