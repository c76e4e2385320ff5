"""Staff's password sign-in (the admin's login page, which /mgmt uses too), with failed sign-ins
limited per account and per client address.

Failures only are counted, in fixed windows of LOGIN_FAILURE_WINDOW seconds in the limiters'
cache (shop/ratelimit.py; Redis in production, so every worker and host counts together).
An account that reached LOGIN_FAILURES_PER_ACCOUNT failures takes no password, even the right one
from another network, until its window ends: guesses spread over many addresses must not add up.
That lock lasts no longer than the window, and its page says how long. A client address that
reached LOGIN_FAILURES_PER_CLIENT (guessing at many accounts) is refused for every account, from
that address only. Addresses that have no account are counted the same, so the answer never says
whether an account exists.
"""

import hashlib
import math

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm

from shop.proxies import client_address
from shop.ratelimit import forget, hit, waiting

ACCOUNT, CLIENT = "login-failures-account", "login-failures-client"


class Throttled(forms.ValidationError):
    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, code="throttled")
        self.retry_after = retry_after


def _account(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()  # a bounded cache key


def _limits() -> tuple[tuple[str, int, str], ...]:
    return (
        (ACCOUNT, settings.LOGIN_FAILURES_PER_ACCOUNT, "for this account"),
        (CLIENT, settings.LOGIN_FAILURES_PER_CLIENT, "from your network"),
    )


def refusal(*, email: str, client: str) -> Throttled | None:
    """Why a sign-in is refused before its password is even checked, if it is."""
    window = settings.LOGIN_FAILURE_WINDOW
    idents = {ACCOUNT: _account(email), CLIENT: client}
    for scope, limit, where in _limits():
        wait = waiting(scope, idents[scope], limit=limit, window=window)
        if wait:
            minutes = math.ceil(wait / 60)
            later = "in a minute" if minutes <= 1 else f"in {minutes} minutes"
            words = f"Too many failed sign-ins {where}. Please try again {later}."
            return Throttled(words, retry_after=wait)
    return None


def count_failure(*, email: str, client: str) -> None:
    window = settings.LOGIN_FAILURE_WINDOW
    hit(ACCOUNT, _account(email), limit=settings.LOGIN_FAILURES_PER_ACCOUNT, window=window)
    hit(CLIENT, client, limit=settings.LOGIN_FAILURES_PER_CLIENT, window=window)


class StaffLoginForm(AdminAuthenticationForm):
    """The admin's login form, refusing before it checks a password once a limit is reached,
    and counting each wrong password (or a customer's account trying the staff login)."""

    throttled: Throttled | None = None

    def clean(self) -> dict:
        email = self.cleaned_data.get("username") or ""
        client = client_address(self.request)
        self.throttled = refusal(email=email, client=client)
        if self.throttled:
            raise self.throttled
        try:
            cleaned = super().clean()
        except forms.ValidationError as error:
            if getattr(error, "code", None) in ("invalid_login", "inactive"):
                count_failure(email=email, client=client)
            raise
        forget(ACCOUNT, _account(email), window=settings.LOGIN_FAILURE_WINDOW)
        return cleaned
