"""The shop's admin site: its login page is the staff's (for /admin and /mgmt alike), with
failed sign-ins limited (accounts/staff_login.py)."""

from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache

from .staff_login import StaffLoginForm


class ShopAdminSite(admin.AdminSite):
    login_form = StaffLoginForm

    @method_decorator(never_cache)
    @login_not_required
    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        response = super().login(request, extra_context)
        form = getattr(response, "context_data", {}).get("form")
        throttled = getattr(form, "throttled", None)
        if throttled:  # the same page, with the status and header a client can act on
            response.status_code = 429
            response["Retry-After"] = str(throttled.retry_after)
        return response
