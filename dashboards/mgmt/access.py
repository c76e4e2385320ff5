"""Who may open /mgmt: staff only (anyone else goes to the admin's password login and never
sees a page; staff who still owe their second factor's code, with STAFF_2FA_REQUIRED, are sent to
give it), and on each page only with its permission: without it, a 403 page that says what the
role does not allow."""

import functools
from urllib.parse import urlencode

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.cache import never_cache

from accounts.second_factor import needs_code
from orders.models import Order


def staff_only(view):
    return staff_member_required(with_code(never_cache(view)), login_url="admin:login")


def with_code(view):
    """StaffAreaMiddleware already asks for the code; this holds even without it."""

    @functools.wraps(view)
    def checked(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if needs_code(request):
            query = urlencode({"next": request.get_full_path()}, safe="/")
            return HttpResponseRedirect(f"{reverse('admin:verify')}?{query}")
        return view(request, *args, **kwargs)

    return checked


def requires(permission: str, words: str):
    """Staff only, and with `permission` (`words`: what it allows, for the 403 page)."""

    def decorate(view):
        @functools.wraps(view)
        def checked(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.has_perm(permission):
                raise PermissionDenied(f"Your role does not allow {words}. Ask an Owner.")
            return view(request, *args, **kwargs)

        checked.permission = permission  # the role matrix test reads it
        return staff_only(checked)

    return decorate


def find_order(number: str) -> Order:
    """The URL's order number → the order (404 if there is none)."""
    return get_object_or_404(Order, number=number.upper())
