"""Requests no page of the shop can mean: refused with a 400 before any view runs."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def has_nul_byte(request: HttpRequest) -> bool:
    """A NUL byte (`%00`) in the path or the query string. PostgreSQL refuses it in any text, so
    a look-up by a URL's order number or session id failed with a 500; no real link has one."""
    if "\x00" in request.path:
        return True
    return any("\x00" in key or "\x00" in value for key, value in request.GET.items())


class RefuseNulBytes:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if has_nul_byte(request):
            return render(request, "400.html", status=400)
        return self.get_response(request)
