from django.http import HttpRequest

from .gateways import is_offline


def payment_mode(request: HttpRequest) -> dict:
    return {"test_mode": is_offline()}
