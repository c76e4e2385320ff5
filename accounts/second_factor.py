"""Staff's second factor: a time-based code (TOTP) from an authenticator app, after the password.

With STAFF_2FA_REQUIRED on, StaffAreaMiddleware sends a signed-in staff member from any /admin or
/mgmt page to the code (`verify`), or, without a confirmed authenticator, to setting one up
(`setup`): a new secret shown once, as a QR code and as text, then a code to confirm it. django-otp
keeps the devices, throttles wrong codes (1 s, 2 s, 4 s… between tries), refuses a code twice,
and marks the session verified (OTPMiddleware's `user.is_verified()`).

Whatever the setting, a session that began with an emailed customer link never reaches a staff
page: it is ended, and the password login asked for.
"""

import math
from collections.abc import Callable
from urllib.parse import urlencode

import django_otp
import segno
from django import forms
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django_otp.plugins.otp_totp.models import TOTPDevice

from .models import is_staff_account

SIGNED_IN_BY_LINK = "accounts.signed_in_by_link"
SETUP_DEVICE = "accounts.setup_device"


class CodeForm(forms.Form):
    code = forms.RegexField(
        regex=r"^\s*\d{6}\s*$",
        label="Code",
        error_messages={"invalid": "Type the 6 digits your authenticator app shows."},
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


def in_staff_area(path: str) -> bool:
    return path.startswith((reverse("admin:index"), f"/{settings.MGMT_PATH}/"))


def needs_code(request: HttpRequest) -> bool:
    """Whether the signed-in staff member still has to give a code in this session."""
    verified = getattr(request.user, "is_verified", lambda: False)()
    return settings.STAFF_2FA_REQUIRED and not verified


def _next(request: HttpRequest) -> str:
    """Where to go once the code is given: the `next` asked for, on this site only."""
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    safe = wanted.startswith("/") and url_has_allowed_host_and_scheme(wanted, allowed_hosts=None)
    return wanted if safe else reverse("admin:index")


def _with_next(url: str, next_url: str) -> str:
    return f"{url}?{urlencode({'next': next_url}, safe='/')}"


def staff_area_refusal(request: HttpRequest) -> HttpResponse | None:
    """Where a signed-in staff member is sent instead of the staff page asked for, if anywhere."""
    user = request.user
    if not (user.is_authenticated and is_staff_account(user) and in_staff_area(request.path)):
        return None
    exempt = {reverse("admin:logout"), reverse("admin:verify"), reverse("admin:verify_setup")}
    if request.path in exempt:
        return None
    login = reverse("admin:login")
    asked = _next(request) if request.path == login else request.get_full_path()
    if request.session.get(SIGNED_IN_BY_LINK):
        logout(request)  # staff sign in with their password, never with a customer's link
        return redirect_to_login(asked, login)
    if needs_code(request):
        return HttpResponseRedirect(_with_next(reverse("admin:verify"), asked))
    return None


class StaffAreaMiddleware:
    """After django-otp's OTPMiddleware: /admin and /mgmt wait for the code (and the
    password, for a session a link began)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return staff_area_refusal(request) or self.get_response(request)


def _confirmed_device(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def _wait_words(device: TOTPDevice) -> str | None:
    allowed, why = device.verify_is_allowed()
    if allowed:
        return None
    until = (why or {}).get("locked_until") or timezone.now()
    seconds = max(1, math.ceil((until - timezone.now()).total_seconds()))
    later = f"{seconds} seconds" if seconds < 120 else f"{math.ceil(seconds / 60)} minutes"
    return f"Too many wrong codes: try again in {later}."


def _check(device_pk: int, code: str) -> tuple[TOTPDevice | None, str, int]:
    """(the device, if the code is right for it; else what to say and the status)."""
    with transaction.atomic():  # the row locked: two tries at once cannot both pass
        device = TOTPDevice.objects.select_for_update().get(pk=device_pk)
        wait = _wait_words(device)
        if wait:
            return None, wait, 429
        if device.verify_token(code.strip()):
            return device, "", 200
    words = "That code is not right: type the 6 digits your authenticator app shows now."
    return None, words, 400


def _page(request, template: str, context: dict, status: int = 200) -> HttpResponse:
    from django.contrib import admin  # the site is made once the apps are loaded

    context = {
        "site_header": admin.site.site_header,
        "site_title": admin.site.site_title,
        "site_url": admin.site.site_url,
        "next": _next(request),
        **context,
    }
    return render(request, template, context, status=status)


def _staff_only(request: HttpRequest) -> HttpResponse | None:
    if request.user.is_authenticated and is_staff_account(request.user):
        return None
    return redirect_to_login(request.get_full_path(), reverse("admin:login"))


# Error reports (DEBUG's page, emailed reports) show each frame's variables and the POST: the
# code, and the secret the setup page makes, are hidden there (in every frame they call, too).
@sensitive_variables()
@sensitive_post_parameters("code")
def verify(request: HttpRequest) -> HttpResponse:
    """The code, once per session, after the password."""
    refused = _staff_only(request)
    if refused:
        return refused
    next_url = _next(request)
    device = _confirmed_device(request.user)
    if device is None:
        return HttpResponseRedirect(_with_next(reverse("admin:verify_setup"), next_url))
    form = CodeForm(request.POST or None)
    problem, status = "", 200
    if request.method == "POST" and form.is_valid():
        verified, problem, status = _check(device.pk, form.cleaned_data["code"])
        if verified:
            django_otp.login(request, verified)
            return HttpResponseRedirect(next_url)
    elif request.method == "POST":
        status = 400
    context = {"form": form, "problem": problem, "title": "Your code"}
    return _page(request, "admin/verify.html", context, status)


@sensitive_variables()
@sensitive_post_parameters("code")
def setup(request: HttpRequest) -> HttpResponse:
    """A new authenticator: its secret is made and shown on this page only (a reload makes
    another, and the last one shown is the one confirmed), then a code confirms it."""
    refused = _staff_only(request)
    if refused:
        return refused
    user, next_url = request.user, _next(request)
    if _confirmed_device(user) is not None:  # never shown again: a lost phone is reset by staff
        return HttpResponseRedirect(_with_next(reverse("admin:verify"), next_url))
    device = TOTPDevice.objects.filter(
        user=user, confirmed=False, pk=request.session.get(SETUP_DEVICE)
    ).first()
    if request.method != "POST" or device is None:
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)
        request.session[SETUP_DEVICE] = device.pk
    form = CodeForm(request.POST if request.method == "POST" else None)
    problem, status = "", 200
    if request.method == "POST" and form.is_valid():
        verified, problem, status = _check(device.pk, form.cleaned_data["code"])
        if verified:
            verified.confirmed = True
            verified.save(update_fields=["confirmed"])
            request.session.pop(SETUP_DEVICE, None)
            django_otp.login(request, verified)
            return HttpResponseRedirect(next_url)
    elif request.method == "POST":
        status = 400
    url = device.config_url
    context = {
        "form": form,
        "problem": problem,
        "title": "Set up your authenticator",
        # Inline SVG made here from the device's own URL (paths only, no text from anyone).
        "qr": mark_safe(segno.make(url, error="m").svg_inline(scale=4, light="#fff")),
        "secret": _grouped(url),
    }
    return _page(request, "admin/verify_setup.html", context, status)


def _grouped(config_url: str) -> str:
    """The base32 secret of an otpauth:// URL in groups of four, for typing it in by hand."""
    secret = config_url.split("secret=", 1)[1].split("&", 1)[0]
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
