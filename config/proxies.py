"""Who the client is, behind a reverse proxy or not."""

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The address the limiters count: CLIENT_IP_HEADER's last entry when it is set (the one
    our proxy appended), else REMOTE_ADDR."""
    if settings.CLIENT_IP_HEADER:
        forwarded = request.headers.get(settings.CLIENT_IP_HEADER, "")
        if forwarded:
            return forwarded.split(",")[-1].strip()  # appended by our proxy: the one to trust
    return request.META.get("REMOTE_ADDR", "")
