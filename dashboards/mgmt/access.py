"""Every /mgmt view is for staff only: anyone else (signed out, or a customer) is sent to the
admin's password login, and never sees a page."""

import functools

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.cache import never_cache

from orders.models import Order


def staff_only(view):
    return staff_member_required(never_cache(view), login_url="admin:login")


def with_order(view):
    """The URL's order number → the order (404 if there is none)."""

    @functools.wraps(view)
    def found(request: HttpRequest, number: str, **kwargs) -> HttpResponse:
        return view(request, get_object_or_404(Order, number=number.upper()), **kwargs)

    return found
