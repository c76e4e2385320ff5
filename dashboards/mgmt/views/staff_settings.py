"""/mgmt/settings/: a staff member's own settings (their time zone)."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.models import User
from accounts.time_zones import spelled, validate_time_zone, zone_name, zone_names

from ..access import requires


class TimeZoneForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["time_zone"]
        labels = {"time_zone": "Time zone"}
        help_texts = {"time_zone": "Its IANA name, such as Europe/Paris; blank for the shop's."}

    def clean_time_zone(self) -> str:
        zone = spelled(self.cleaned_data["time_zone"])
        validate_time_zone(zone)
        return zone


@requires("orders.view_order", "opening /mgmt")
@require_http_methods(["GET", "POST"])
def staff_settings(request: HttpRequest) -> HttpResponse:
    """Only the signed-in member's own row: nobody sets another's zone here."""
    form = TimeZoneForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        user = form.save(commit=False)
        user.save(update_fields=["time_zone"])
        messages.success(request, f"Times on /mgmt are now shown in {zone_name(request.user)}.")
        return redirect("mgmt:settings")
    status = 400 if form.errors else 200
    context = {
        "form": form,
        "zones": zone_names(),
        "current": zone_name(request.user),
        "shop_zone": settings.TIME_ZONE,
    }
    return render(request, "dashboards/mgmt/settings.html", context, status=status)
