"""The shop's admin site: its login page is the staff's (for /admin and /mgmt alike), with
failed sign-ins limited (accounts/staff_login.py), then the second factor's pages
(accounts/second_factor.py); nothing of the admin answers before the code when it is required."""

from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache

from . import second_factor
from .staff_login import StaffLoginForm


class ShopAdminSite(admin.AdminSite):
    login_form = StaffLoginForm

    def has_permission(self, request: HttpRequest) -> bool:
        # StaffAreaMiddleware sends an unverified session to the code first; this holds even
        # if a view is reached some other way.
        return super().has_permission(request) and not second_factor.needs_code(request)

    def get_urls(self) -> list[URLPattern]:
        views = [
            # Signing out needs no code: a staff member who gave the password and cannot give
            # the code (a shared computer, a lost phone) must still end the session. The
            # admin's own logout view asks for admin access first.
            path("logout/", never_cache(self.logout), name="logout"),
            path("verify/", never_cache(second_factor.verify), name="verify"),
            path("verify/setup/", never_cache(second_factor.setup), name="verify_setup"),
        ]
        return views + super().get_urls()

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
