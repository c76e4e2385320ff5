"""Staff's licenses: pool stock and waiting licenses, key imports, and the commands on a license."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from audit.commands import Refused
from licenses import commands
from licenses.forms import ImportKeysForm
from licenses.models import KeyEmail, License, LicenseStatus
from shop.redirects import SeeOther

from ..access import find_order, requires
from ..confirm import Confirm, command_view
from ..overview import expiring_licenses, pool_stock


def _licenses_context(form: ImportKeysForm, user) -> dict:
    waiting = License.objects.filter(status=LicenseStatus.PENDING).select_related(
        "order", "product"
    )
    return {
        "stock": pool_stock(),
        "waiting": list(waiting.order_by("created_at", "id")[:100]),
        "expiring": list(expiring_licenses(timezone.now())[:100]),
        "form": form,
        "can_import": commands.import_pool_keys.permitted(user),
    }


@requires("licenses.view_license", "reading licenses")
@require_GET
def licenses(request: HttpRequest) -> HttpResponse:
    context = _licenses_context(ImportKeysForm(), request.user)
    return render(request, "dashboards/mgmt/licenses.html", context)


@requires("licenses.view_license", "reading licenses")
@require_http_methods(["GET", "POST"])
def import_keys(request: HttpRequest) -> HttpResponse:
    """Keys pasted or uploaded (text or CSV), duplicates counted and skipped; licenses waiting
    for a key get one, oldest first."""
    if not commands.import_pool_keys.permitted(request.user):
        raise PermissionDenied("Your role does not allow importing keys. Ask an Owner.")
    form = ImportKeysForm(*([request.POST, request.FILES] if request.method == "POST" else []))
    if request.method == "POST" and form.is_valid():
        product = form.cleaned_data["product"]
        try:
            keys = form.parsed_keys()
            imported, skipped = commands.import_pool_keys.run(product, by=request.user, keys=keys)
        except UnicodeDecodeError:
            form.add_error("file", "The file is not UTF-8 text.")
        except Refused as refused:
            form.add_error(None, refused.words)
        else:
            messages.success(
                request,
                f"{product}: imported {imported} key(s), skipped {skipped} duplicate(s) or blank(s).",
            )
            return SeeOther(reverse("mgmt:licenses"))
    status = 400 if request.method == "POST" else 200
    context = _licenses_context(form, request.user)
    return render(request, "dashboards/mgmt/licenses.html", context, status=status)


import_keys.command = commands.import_pool_keys


def _license(number: str, pk: int) -> License:
    order = find_order(number)
    return get_object_or_404(License.objects.select_related("product", "order"), pk=pk, order=order)


def _order_page(request: HttpRequest, license: License) -> str:
    return reverse("mgmt:order", args=[license.order.number])


def _described(license: License) -> str:
    return f"The {license.product} license (key {license.masked_key or 'not issued'}) of order {license.order.number}"


suspend_license = command_view(
    Confirm(
        command=commands.suspend,
        find=_license,
        title=lambda license: "Suspend this license?",
        lines=lambda license: [
            f"{_described(license)} is suspended: the key stops validating.",
            "A won dispute never lifts a staff suspension.",
        ],
        done=lambda license, result: (
            f"Suspended the {license.product} license ({license.masked_key})."
        ),
        back=_order_page,
    )
)


reinstate_license = command_view(
    Confirm(
        command=commands.reinstate,
        find=_license,
        title=lambda license: "Reinstate this license?",
        lines=lambda license: [
            f"{_described(license)} is active again.",
            "Only a suspended license can be reinstated.",
        ],
        done=lambda license, result: (
            f"Reinstated the {license.product} license ({license.masked_key})."
        ),
        back=_order_page,
    )
)


def _show_key(request: HttpRequest, license: License, key: str) -> HttpResponse:
    context = {"order": license.order, "license": license, "key": key}
    return render(request, "dashboards/mgmt/key.html", context)


reveal_key = command_view(
    Confirm(
        command=commands.reveal_key,
        find=_license,
        title=lambda license: "Show the full key?",
        lines=lambda license: [
            f"{_described(license)}: its full key is shown once, on the next page.",
            "Your look at it is recorded with your name.",
        ],
        done=lambda license, key: "",
        after=_show_key,
        back=_order_page,
    )
)


reset_activations = command_view(
    Confirm(
        command=commands.reset_activations,
        find=_license,
        title=lambda license: "Reset this license's devices?",
        lines=lambda license: [
            f"{_described(license)}: every device it is activated on is deactivated.",
            "The customer activates again on the devices they use; this does not count against "
            "their own deactivation limit.",
        ],
        done=lambda license, ended: (
            f"{ended} device(s) of the {license.product} license deactivated."
        ),
        back=_order_page,
    )
)


def _email(number: str, pk: int) -> KeyEmail:
    return get_object_or_404(
        KeyEmail.objects.select_related("order"), pk=pk, order=find_order(number)
    )


send_email_again = command_view(
    Confirm(
        command=commands.send_key_email_again,
        find=_email,
        title=lambda email: "Send this email again?",
        lines=lambda email: [
            f"“{email.get_kind_display()}”{f' ({email.subject})' if email.subject else ''} to"
            f" {email.order.email} is queued again with fresh attempts; the email worker sends it.",
            f"It was not delivered: {email.last_error or 'the mail server did not take it'}.",
        ],
        done=lambda email, result: f"The email is queued again for {email.order.email}.",
        back=lambda request, email: reverse("mgmt:order", args=[email.order.number]),
    )
)
