"""Each staff member's time zone: /mgmt (and the admin) show times in it, and its CSV says which
zone its times are in. Unset, the shop's TIME_ZONE applies."""

import functools
import zoneinfo
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone


@functools.cache
def zone_names() -> tuple[str, ...]:
    """The IANA names this server's time zone database knows (Europe/Paris, America/New_York)."""
    return tuple(sorted(zoneinfo.available_timezones()))


def spelled(name: str) -> str:
    """`name` as the database spells it, whatever its case ("europe/paris" is Europe/Paris);
    `name` itself when no zone has that name."""
    typed = name.strip()
    return next((zone for zone in zone_names() if zone.lower() == typed.lower()), typed)


def validate_time_zone(name: str) -> None:
    if name and name not in zone_names():
        raise ValidationError(
            "“%(name)s” is not a time zone this server knows: write its IANA name, such as "
            "Europe/Paris, America/New_York or UTC.",
            code="unknown_zone",
            params={"name": name[:60]},
        )


def zone_name(user) -> str:
    """The zone `user` reads times in: their own, else the shop's TIME_ZONE."""
    chosen = getattr(user, "time_zone", "")
    return chosen if chosen in zone_names() else settings.TIME_ZONE


class StaffTimeZoneMiddleware:
    """On /mgmt and /admin, a staff member's times are in their own zone (Django's `localtime`
    and the templates' date filters read the active zone). Other pages keep TIME_ZONE, and
    never load the user for it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.prefixes = (f"/{settings.MGMT_PATH}/", "/admin/")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if not request.path.startswith(self.prefixes) or not (user and user.is_staff):
            return self.get_response(request)
        timezone.activate(zoneinfo.ZoneInfo(zone_name(user)))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
