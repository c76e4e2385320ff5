"""/mgmt/settings/: a staff member's own settings (their time zone)."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.commands import set_time_zone
from accounts.models import User
from accounts.time_zones import spelled, validate_time_zone, zone_name, zone_names
from audit.commands import Refused
from shop.redirects import SeeOther

from ..access import requires


class TimeZoneForm(forms.ModelForm):
    """Validates only: the command writes (and records) the change."""

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
        zone = form.cleaned_data["time_zone"]
        try:
            set_time_zone.run(request.user, by=request.user, time_zone=zone)
        except Refused as refused:
            messages.error(request, refused.words)
        else:
            messages.success(
                request, f"Times on /mgmt are now shown in {zone or settings.TIME_ZONE}."
            )
        return SeeOther(reverse("mgmt:settings"))
    status = 400 if form.errors else 200
    context = {
        "form": form,
        "zones": zone_names(),
        "current": zone_name(request.user),
        "shop_zone": settings.TIME_ZONE,
    }
    return render(request, "dashboards/mgmt/settings.html", context, status=status)


staff_settings.command = set_time_zone  # its POST runs the command (tests/test_commands.py)
