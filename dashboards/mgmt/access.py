"""Every /mgmt view is for staff only: anyone else (signed out, or a customer) is sent to the
admin's password login, and never sees a page; staff who still owe their second factor's code
(STAFF_2FA_REQUIRED) are sent to give it."""

import functools
from urllib.parse import urlencode

from django.contrib.admin.views.decorators import staff_member_required
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


def with_order(view):
    """The URL's order number → the order (404 if there is none)."""

    @functools.wraps(view)
    def found(request: HttpRequest, number: str, **kwargs) -> HttpResponse:
        return view(request, get_object_or_404(Order, number=number.upper()), **kwargs)

    return found
