"""Who the client is, and whether it came over https, behind a reverse proxy or not.

Headers a proxy sets (X-Forwarded-Proto, CLIENT_IP_HEADER) are believed only from an address in
FORWARDED_ALLOW_IPS, as gunicorn does for its scheme: anyone else could send them too, to pass
for https or to count against another address's limits (or none).
"""

import functools
import ipaddress
from collections.abc import Callable, Iterable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def _networks(allowed: tuple[str, ...]) -> tuple[Network, ...] | None:
    """The networks of FORWARDED_ALLOW_IPS (addresses or CIDR networks); None for "*"."""
    if "*" in allowed:
        return None
    return tuple(ipaddress.ip_network(entry) for entry in allowed if entry)


def is_trusted_proxy(remote_addr: str) -> bool:
    """Whether REMOTE_ADDR is a proxy of ours. An empty one is a unix socket, which only
    processes on this host can reach (gunicorn trusts those too)."""
    networks = _networks(tuple(entry.strip() for entry in _allowed(settings.FORWARDED_ALLOW_IPS)))
    if networks is None or not remote_addr:
        return True
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    return any(address in network for network in networks)


def _allowed(value: str | Iterable[str]) -> Iterable[str]:
    return value.split(",") if isinstance(value, str) else value


def client_address(request: HttpRequest) -> str:
    """The address the limiters count: CLIENT_IP_HEADER's last entry (the one our proxy
    appended) when the request came through our proxy, else REMOTE_ADDR."""
    remote = request.META.get("REMOTE_ADDR", "")
    if settings.CLIENT_IP_HEADER and is_trusted_proxy(remote):
        forwarded = request.headers.get(settings.CLIENT_IP_HEADER, "")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    return remote


def _meta_name(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


class ForwardedHeadersFromProxiesOnly:
    """Drops the proxy's headers from a request that did not come through a trusted proxy,
    before SecurityMiddleware (https redirect, secure cookies) or a view reads them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_trusted_proxy(request.META.get("REMOTE_ADDR", "")):
            proto = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
            names = [proto[0]] if proto else []
            if settings.CLIENT_IP_HEADER:
                names.append(_meta_name(settings.CLIENT_IP_HEADER))
            for name in names:
                request.META.pop(name, None)
        return self.get_response(request)
