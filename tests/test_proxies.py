"""Forwarded headers (X-Forwarded-Proto, CLIENT_IP_HEADER) count only when they come from a proxy
in FORWARDED_ALLOW_IPS; anyone else who sends them is what REMOTE_ADDR says."""

import runpy
from pathlib import Path

import pytest
from django.test import RequestFactory

from shop.proxies import client_address
from tests.account_support import ask_for_link

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent
STRANGER = "203.0.113.9"


@pytest.fixture
def behind_a_proxy(settings):
    settings.CLIENT_IP_HEADER = "X-Forwarded-For"
    settings.FORWARDED_ALLOW_IPS = ["127.0.0.1", "10.0.0.0/8"]
    return settings


def test_a_client_that_is_not_the_proxy_cannot_choose_its_address(behind_a_proxy):
    forged = RequestFactory().get("/", REMOTE_ADDR=STRANGER, HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert client_address(forged) == STRANGER
    proxied = RequestFactory().get("/", REMOTE_ADDR="10.2.3.4", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert client_address(proxied) == "198.51.100.1"


def test_a_stranger_rotating_forwarded_addresses_is_still_throttled_as_itself(
    client, behind_a_proxy
):
    behind_a_proxy.ACCOUNT_LINK_CLIENT_RATE = 2
    answers = [
        client.post(
            "/account/login/",
            {"email": f"user{n}@example.com"},
            REMOTE_ADDR=STRANGER,
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        ).status_code
        for n in range(3)
    ]
    assert answers == [200, 200, 429]
    # Through the proxy each forwarded address is a client of its own.
    assert ask_for_link(client, "user9@example.com", address="127.0.0.1").status_code == 200


@pytest.mark.parametrize(("remote", "secure"), [(STRANGER, False), ("127.0.0.1", True)])
def test_x_forwarded_proto_is_believed_only_from_the_proxy(client, settings, remote, secure):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_PROTO="https")
    if secure:
        assert response.status_code == 200
    else:  # a plain-http request that only claims https is sent to https
        assert response.status_code == 301
        assert response["Location"].startswith("https://")


def test_gunicorn_listens_on_the_loopback_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("GUNICORN_BIND", raising=False)
    assert runpy.run_path(str(ROOT / "config/gunicorn.py"))["bind"] == "127.0.0.1:8000"
    monkeypatch.setenv("GUNICORN_BIND", "0.0.0.0:9000")
    assert runpy.run_path(str(ROOT / "config/gunicorn.py"))["bind"] == "0.0.0.0:9000"
