"""Staff's second factor: a time-based code (TOTP) from an authenticator app, after the password.

With STAFF_2FA_REQUIRED on, StaffAreaMiddleware sends a signed-in staff member from any /admin or
/mgmt page to the code (`verify`), or, without a confirmed authenticator, to setting one up
(`setup`): first a code emailed to the staff member's own address (the password alone must not let
whoever learnt it make his phone the account's second factor), then a new secret shown once, as a
QR code and as text, then a code to confirm it. django-otp
keeps the devices, throttles wrong codes (1 s, 2 s, 4 s… between tries), refuses a code twice,
and marks the session verified (OTPMiddleware's `user.is_verified()`).

Whatever the setting, a session that began with an emailed customer link never reaches a staff
page: it is ended, and the password login asked for.
"""

import logging
import math
import secrets
import time
from collections.abc import Callable
from urllib.parse import urlencode

import django_otp
import segno
from django import forms
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django_otp.plugins.otp_totp.models import TOTPDevice

from shop.ratelimit import hit

from .models import is_staff_account

log = logging.getLogger(__name__)

SIGNED_IN_BY_LINK = "accounts.signed_in_by_link"
SETUP_DEVICE = "accounts.setup_device"
SETUP_CODE = "accounts.setup_code"  # the emailed code's keyed hash, its account, expiry, tries
MAILBOX_PROVEN = "accounts.mailbox_proven"  # the account whose mailbox gave its code
SETUP_CODE_MINUTES = 15
SETUP_CODE_TRIES = 5


def six_digits(label: str, invalid: str) -> forms.RegexField:
    """A one-time code's field: six digits (spaces around them forgiven)."""
    return forms.RegexField(
        regex=r"^\s*\d{6}\s*$",
        label=label,
        error_messages={"invalid": invalid},
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


class CodeForm(forms.Form):
    code = six_digits("Code", "Type the 6 digits your authenticator app shows.")


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


class MailboxCodeForm(forms.Form):
    mailbox_code = six_digits("Code from the email", "Type the 6 digits of the email we sent you.")


def _hashed(code: str, user) -> str:
    return salted_hmac("accounts.setup_code", f"{user.pk}:{code}").hexdigest()


def masked_address(email: str) -> str:
    """o***@example.com: enough for its owner to know which mailbox to look in."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def _email_setup_code(request: HttpRequest) -> tuple[str, int]:
    """A new code emailed to the signed-in staff member; (what to say, status) when none was."""
    user = request.user
    wait = hit(
        "staff-setup-email", str(user.pk), limit=settings.STAFF_SETUP_EMAILS_PER_HOUR, window=3600
    )
    if wait:
        minutes = math.ceil(wait / 60)
        return f"Too many codes asked for: try again in {minutes} minute(s).", 429
    code = f"{secrets.randbelow(1_000_000):06d}"
    try:
        send_mail(
            subject="Your code to set up an authenticator",
            message=(
                f"Someone signed in to the shop's staff pages as {user.email} with your password"
                f" and is setting up an authenticator app.\n\nIf it is you, type this code on the"
                f" page: {code}\nIt works for {SETUP_CODE_MINUTES} minutes.\n\nIf it is not you,"
                f" do not share it: change your password and tell an Owner.\n"
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[user.email],
        )
    except Exception as error:  # the mail server's problem: said in words, the code never shown
        log.warning("authenticator setup code not sent: %s", type(error).__name__)
        return (
            "The code could not be emailed (the mail server did not take it). Try again later.",
            503,
        )
    request.session[SETUP_CODE] = {
        "hash": _hashed(code, user),
        "user": user.pk,
        "until": time.time() + SETUP_CODE_MINUTES * 60,
        "tries": 0,
    }
    return "", 200


def _check_mailbox_code(request: HttpRequest, typed: str) -> tuple[str, int]:
    """("", 200) once the emailed code was typed right: the session's proof of the mailbox."""
    pending = request.session.get(SETUP_CODE)
    if not pending or pending.get("user") != request.user.pk:
        return "Ask for a new code: none is waiting for this account.", 400
    if time.time() > pending["until"]:
        return "That code expired: ask for a new code.", 400
    # Counted in the shared cache too: parallel requests of one session each read the tries
    # the session had, and would get a guess each.
    counted = hit(
        "staff-setup-code",
        f"{request.user.pk}:{pending['until']}",
        limit=SETUP_CODE_TRIES,
        window=SETUP_CODE_MINUTES * 60,
    )
    if pending["tries"] >= SETUP_CODE_TRIES or counted:
        return "Too many wrong codes. Ask for a new code.", 400
    if constant_time_compare(pending["hash"], _hashed(typed.strip(), request.user)):
        request.session.pop(SETUP_CODE)
        request.session[MAILBOX_PROVEN] = request.user.pk
        return "", 200
    pending["tries"] += 1
    request.session[SETUP_CODE] = pending
    if pending["tries"] >= SETUP_CODE_TRIES:
        return "That is not the code we emailed, five times now. Ask for a new code.", 400
    return "That is not the code we emailed: check the newest email and type its 6 digits.", 400


def _mailbox_step(request: HttpRequest) -> HttpResponse:
    """The setup's first step: the code emailed to the staff member's own address."""
    form = MailboxCodeForm(request.POST if "mailbox_code" in request.POST else None)
    problem, status = "", 200
    if request.method == "POST" and "mailbox_code" in request.POST:
        if form.is_valid():
            problem, status = _check_mailbox_code(request, form.cleaned_data["mailbox_code"])
            if not problem:
                return HttpResponseRedirect(
                    _with_next(reverse("admin:verify_setup"), _next(request))
                )
        else:
            status = 400
    elif request.method == "POST" and "send_code" in request.POST:
        problem, status = _email_setup_code(request)
    elif request.method == "POST":  # an authenticator's code before the mailbox's: not yet
        problem, status = "First type the code we emailed you.", 400
    # A code goes out on the staff member's POST only: a page another site loads sends nothing.
    sent = request.session.get(SETUP_CODE, {}).get("user") == request.user.pk
    context = {
        "sent": sent,
        "form": form,
        "problem": problem,
        "title": "Set up your authenticator",
        "mailbox": masked_address(request.user.email),
        "minutes": SETUP_CODE_MINUTES,
    }
    return _page(request, "admin/verify_mailbox.html", context, status)


@sensitive_variables()
@sensitive_post_parameters("code", "mailbox_code")
def setup(request: HttpRequest) -> HttpResponse:
    """A new authenticator, once the staff member's mailbox gave the code emailed to it: its
    secret is made and shown on this page only (a reload makes another, and the last one shown
    is the one confirmed), then a code confirms it."""
    refused = _staff_only(request)
    if refused:
        return refused
    user, next_url = request.user, _next(request)
    if _confirmed_device(user) is not None:  # never shown again: a lost phone is reset by staff
        return HttpResponseRedirect(_with_next(reverse("admin:verify"), next_url))
    if request.session.get(MAILBOX_PROVEN) != user.pk:
        return _mailbox_step(request)
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
            request.session.pop(MAILBOX_PROVEN, None)
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
