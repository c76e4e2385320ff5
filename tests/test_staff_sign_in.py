"""Staff sign in at /admin/login/ with a password: failed sign-ins are limited per account and per
client address (shop/ratelimit.py's fixed windows), said in words with how long to wait, and
the wait ends with the window."""

import time
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import SESSION_KEY
from django.utils import timezone

from accounts.models import User

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


@pytest.fixture
def limits(settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 3
    settings.LOGIN_FAILURES_PER_CLIENT = 5
    settings.LOGIN_FAILURE_WINDOW = 900
    return settings


def staff_user(email: str = "ops@example.com") -> User:
    return User.objects.create_user(email, password=PASSWORD, is_staff=True)


def sign_in(client, email: str, password: str, *, address: str = "10.0.0.1"):
    return client.post(
        "/admin/login/?next=/mgmt/",
        {"username": email, "password": password, "next": "/mgmt/"},
        REMOTE_ADDR=address,
    )


def signed_in(client) -> bool:
    return SESSION_KEY in client.session


def said(response) -> str:
    return response.content.decode()


def test_a_right_password_after_too_many_wrong_ones_is_refused_with_how_long_to_wait(
    client, limits
):
    staff_user()
    # The limits count in fixed windows: start just after one opens, with the clock held, so the
    # guesses never straddle two windows and the wait is many minutes however slow the run.
    opened = int(time.time()) // 900 * 900 + 1
    with time_machine.travel(opened, tick=False):
        refused_with_a_wait(client)


def refused_with_a_wait(client) -> None:
    for _ in range(3):
        wrong = sign_in(client, "ops@example.com", "guess")
        assert "Please enter the correct email and password" in said(wrong)
    refused = sign_in(client, "ops@example.com", PASSWORD)
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 900
    assert "Too many failed sign-ins for this account." in said(refused)
    assert "Please try again in" in said(refused) and "minutes" in said(refused)
    assert not signed_in(client)
    # From another network too, until the window ends: the guesses were against the account.
    assert sign_in(client, "ops@example.com", PASSWORD, address="10.9.9.9").status_code == 429
    assert not signed_in(client)


def test_the_wait_ends_with_the_window(client, limits):
    staff_user()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(3):
            sign_in(client, "ops@example.com", "guess")
        assert sign_in(client, "ops@example.com", PASSWORD).status_code == 429
    with time_machine.travel(start + timedelta(seconds=901), tick=False):
        assert sign_in(client, "ops@example.com", PASSWORD)["Location"] == "/mgmt/"
    assert signed_in(client)


def test_another_account_from_the_same_client_still_signs_in_under_the_clients_limit(
    client, limits
):
    staff_user("ops@example.com")
    staff_user("boss@example.com")
    for _ in range(3):
        sign_in(client, "ops@example.com", "guess")
    assert sign_in(client, "boss@example.com", PASSWORD)["Location"] == "/mgmt/"


def test_a_client_guessing_across_accounts_is_stopped_for_every_account(client, limits):
    staff_user("ops@example.com")
    for n in range(5):  # two guesses at each of three addresses, under the account limit
        sign_in(client, f"user{n % 3}@example.com", "guess")
    refused = sign_in(client, "ops@example.com", PASSWORD)
    assert refused.status_code == 429
    assert "Too many failed sign-ins from your network." in said(refused)
    assert not signed_in(client)
    other = sign_in(client, "ops@example.com", PASSWORD, address="10.0.0.2")
    assert other["Location"] == "/mgmt/"


def test_a_successful_sign_in_clears_the_accounts_failures(client, limits):
    staff_user()
    for _ in range(2):
        sign_in(client, "ops@example.com", "guess")
    assert sign_in(client, "ops@example.com", PASSWORD)["Location"] == "/mgmt/"
    client.logout()
    for _ in range(2):
        sign_in(client, "ops@example.com", "guess")
    assert sign_in(client, "ops@example.com", PASSWORD)["Location"] == "/mgmt/"


def test_the_limits_count_the_address_the_proxy_saw(client, limits):
    limits.CLIENT_IP_HEADER = "X-Forwarded-For"
    staff_user("ops@example.com")
    for n in range(5):
        client.post(
            "/admin/login/",
            {"username": f"user{n}@example.com", "password": "guess"},
            REMOTE_ADDR="127.0.0.1",
            HTTP_X_FORWARDED_FOR="198.51.100.7",
        )
    through_proxy = {"REMOTE_ADDR": "127.0.0.1"}
    refused = client.post(
        "/admin/login/",
        {"username": "ops@example.com", "password": PASSWORD},
        HTTP_X_FORWARDED_FOR="198.51.100.7",
        **through_proxy,
    )
    assert refused.status_code == 429
    allowed = client.post(
        "/admin/login/",
        {"username": "ops@example.com", "password": PASSWORD},
        HTTP_X_FORWARDED_FOR="198.51.100.8",
        **through_proxy,
    )
    assert allowed.status_code == 302
