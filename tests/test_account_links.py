"""Signing in to /account by emailed link: once, for a limited time, for that email only, the
same answer for every address, throttled; a bad link is a page offering a new one."""

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
import time_machine
from django.contrib.auth import SESSION_KEY
from django.core import mail, signing
from django.core.cache import cache
from django.utils import timezone

from accounts.models import User
from dashboards.account.links import SALT, make_link_token
from dashboards.account.models import LoginLinkUse
from tests.account_support import (
    LINK,
    ask_for_link,
    customer,
    emailed_link,
    link_path,
    order_in,
    sign_in,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()
    yield
    cache.clear()


def signed_in_email(client) -> str | None:
    user_id = client.session.get(SESSION_KEY)
    return User.objects.get(pk=user_id).email if user_id else None


def follow_link(client, path: str):
    confirm = client.get(path)
    assert confirm.status_code == 200, confirm.content.decode()
    return client.post(path)


def test_a_link_signs_a_new_customer_in_and_creates_their_account_without_a_password(client):
    order_in("completed", email="ada@example.com")
    page = ask_for_link(client, "Ada@Example.com ")
    assert page.status_code == 200
    assert (
        "We have sent a sign-in link to <strong>ada@example.com</strong>" in page.content.decode()
    )
    assert mail.outbox[0].to == ["ada@example.com"]
    assert not User.objects.filter(email="ada@example.com").exists()  # not before the link is used

    path = emailed_link()
    confirm = client.get(path)
    assert "Sign in as <strong>ada@example.com</strong>" in confirm.content.decode()
    assert signed_in_email(client) is None  # opening the link (a mail scanner may) signs no one in

    response = client.post(path)
    assert response.status_code == 303
    assert response["Location"] == "/account/"
    user = User.objects.get(email="ada@example.com")
    assert not user.has_usable_password()
    assert signed_in_email(client) == "ada@example.com"
    assert "Signed in as ada@example.com." in client.get("/account/").content.decode()


def test_a_link_expires_after_its_max_age(client, settings):
    settings.ACCOUNT_LINK_MAX_AGE = 600
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        ask_for_link(client, "ada@example.com")
    path = emailed_link()
    with time_machine.travel(start + timedelta(seconds=599), tick=False):
        assert client.get(path).status_code == 200
    with time_machine.travel(start + timedelta(seconds=601), tick=False):
        page = client.get(path)
        assert page.status_code == 400
        assert "This sign-in link has expired: links work for 10 minutes." in page.content.decode()
        assert 'value="ada@example.com"' in page.content.decode()  # the form for a new link
        assert client.post(path).status_code == 400
    assert signed_in_email(client) is None


def test_a_link_works_once(client):
    ask_for_link(client, "ada@example.com")
    path = emailed_link()
    assert follow_link(client, path).status_code == 303
    client.post("/account/logout/")
    assert signed_in_email(client) is None

    again = client.post(path)
    assert again.status_code == 400
    assert "already been used: each link works once" in again.content.decode()
    assert client.get(path).status_code == 400
    assert signed_in_email(client) is None


def test_a_link_made_before_a_later_sign_in_no_longer_works(client):
    ask_for_link(client, "ada@example.com")
    ask_for_link(client, "ada@example.com")
    first, second = emailed_link(0), emailed_link(1)
    follow_link(client, second)
    client.post("/account/logout/")

    page = client.post(first)
    assert page.status_code == 400
    assert "This sign-in link was replaced" in page.content.decode()
    assert signed_in_email(client) is None


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"), id="signature"),
        pytest.param(lambda token: token[:20], id="cut-short"),
        pytest.param(lambda token: "x" + token, id="payload"),
        pytest.param(lambda token: "not-a-token", id="garbage"),
        pytest.param(lambda token: "a" * 3000, id="very-long"),
    ],
)
def test_a_tampered_link_signs_no_one_in(client, tamper):
    ask_for_link(client, "ada@example.com")
    token = emailed_link().split("/")[-2]
    page = client.post(f"/account/login/{tamper(token)}/")
    assert page.status_code == 400
    assert "This sign-in link is not valid" in page.content.decode()
    assert "Email me a sign-in link" in page.content.decode()
    assert signed_in_email(client) is None


def test_a_link_forged_for_another_email_or_signed_for_another_purpose_is_refused(client):
    ask_for_link(client, "mallory@example.com")
    token = emailed_link().split("/")[-2]
    payload = signing.loads(token, salt=SALT)
    forged = signing.dumps({**payload, "e": "ada@example.com"}, salt="another.purpose")
    # Mallory's signature on a payload naming Ada:
    spliced = signing.dumps({**payload, "e": "ada@example.com"}, salt=SALT).split(":")[0]
    spliced += ":" + token.split(":", 1)[1]
    for bad in (forged, spliced):
        assert client.post(f"/account/login/{bad}/").status_code == 400
    assert signed_in_email(client) is None


def test_another_emails_link_signs_in_that_email_only_after_saying_so(client):
    order_in("completed", email="ada@example.com")
    bob_order = order_in("completed", email="bob@example.com")
    sign_in(client, "bob@example.com")
    ask_for_link(client, "ada@example.com")
    path = emailed_link()

    confirm = client.get(path).content.decode()
    assert "Sign in as <strong>ada@example.com</strong>" in confirm
    assert "You are signed in as bob@example.com; this signs you out of that account." in confirm
    follow_link(client, path)
    assert signed_in_email(client) == "ada@example.com"
    assert bob_order.number not in client.get("/account/").content.decode()
    assert client.get(f"/account/orders/{bob_order.number}/").status_code == 404


def test_the_answer_is_the_same_for_known_and_unknown_emails(client):
    order_in("completed", email="known@example.com")
    sign_in(client, "known@example.com")
    client.logout()
    pages = []
    for email in ("known@example.com", "nobody@example.com"):
        response = ask_for_link(client, email)
        text = response.content.decode().replace(email, "EMAIL").replace(quote(email), "EMAIL")
        text = text.replace(link_path(text), "LINK")
        text = re.sub(r'name="csrfmiddlewaretoken" value="\w+"', "", text)  # new per answer
        pages.append((response.status_code, text))
    assert pages[0] == pages[1]
    assert [m.to for m in mail.outbox] == [["known@example.com"], ["nobody@example.com"]]
    assert not User.objects.filter(email="nobody@example.com").exists()
    # Only the mailbox's owner learns that the address has no orders.
    assert "no orders under this address" not in mail.outbox[0].body
    assert "no orders under this address" in mail.outbox[1].body


def test_link_requests_are_throttled_per_email(client, settings):
    settings.ACCOUNT_LINK_EMAIL_RATE = 2
    for n in range(2):
        assert ask_for_link(client, "ada@example.com", address=f"10.0.0.{n}").status_code == 200
    refused = ask_for_link(client, "ADA@example.com", address="10.0.0.9")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert "Too many sign-in links were asked for this address" in refused.content.decode()
    assert len(mail.outbox) == 2
    assert ask_for_link(client, "bob@example.com").status_code == 200


def test_link_requests_are_throttled_per_client_address(client, settings):
    settings.ACCOUNT_LINK_CLIENT_RATE = 3
    for n in range(3):
        assert ask_for_link(client, f"user{n}@example.com").status_code == 200
    refused = ask_for_link(client, "user9@example.com")
    assert refused.status_code == 429
    assert "from your network" in refused.content.decode()
    assert len(mail.outbox) == 3
    assert ask_for_link(client, "user9@example.com", address="10.1.1.1").status_code == 200


def test_a_throttle_window_ends(client, settings):
    settings.ACCOUNT_LINK_EMAIL_RATE = 1
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        ask_for_link(client, "ada@example.com")
        assert ask_for_link(client, "ada@example.com").status_code == 429
    later = start + timedelta(seconds=settings.ACCOUNT_LINK_WINDOW + 1)
    with time_machine.travel(later, tick=False):
        assert ask_for_link(client, "ada@example.com").status_code == 200


def test_test_mode_shows_the_link_on_the_page_and_stripe_mode_does_not(client, settings):
    page = ask_for_link(client, "ada@example.com").content.decode()
    assert link_path(page) == emailed_link()
    assert "TEST MODE: no email needs to arrive" in page

    settings.STRIPE_SECRET_KEY = "sk_test_configured"
    page = ask_for_link(client, "bob@example.com").content.decode()
    assert not LINK.search(page)
    assert "TEST MODE" not in page
    assert len(mail.outbox) == 2


def normalised(response, email: str) -> tuple[int, str]:
    """A page with what differs between any two answers taken out: the address, the link made
    for it and the CSRF token."""
    text = response.content.decode().replace(email, "EMAIL").replace(quote(email), "EMAIL")
    if LINK.search(text):
        text = text.replace(link_path(text), "LINK")
    return response.status_code, re.sub(r'name="csrfmiddlewaretoken" value="\w+"', "", text)


@pytest.fixture(params=["superuser", "staff"])
def staff_email(request) -> str:
    email = f"{request.param}@example.com"
    if request.param == "superuser":
        User.objects.create_superuser(email, "a-long-password")
    else:
        User.objects.create_user(email, password="a-long-password", is_staff=True)
    return email


@pytest.mark.parametrize("mode", ["test", "stripe"])
def test_asking_a_link_for_a_staff_address_answers_as_for_anyone(
    client, settings, staff_email, mode
):
    """The page must not tell an attacker which addresses are staff's (in test mode too, where a
    customer's link shows on the page: a staff address gets one shown as well, which works no
    more than a forged one)."""
    if mode == "stripe":
        settings.STRIPE_SECRET_KEY = "sk_test_configured"
    customer(staff_email.replace("@", "-customer@"))
    staff_page = normalised(ask_for_link(client, staff_email), staff_email)
    other = staff_email.replace("@", "-customer@")
    assert staff_page == normalised(ask_for_link(client, other), other)


def test_a_staff_address_is_emailed_how_staff_sign_in_and_no_link(client, staff_email):
    ask_for_link(client, staff_email)
    (sent,) = mail.outbox
    assert sent.to == [staff_email]
    assert not LINK.search(sent.body)
    assert "sign in with your password" in sent.body
    assert "http://localhost:8000/admin/login/" in sent.body


def staff_refused(page) -> bool:
    html = page.content.decode()
    return page.status_code == 400 and "Staff accounts do not sign in with an emailed link" in html


def test_a_link_forged_for_a_staff_email_is_refused_when_opened_and_when_used(client, staff_email):
    """Made with the shop's own key (a leaked SECRET_KEY, a bug elsewhere): still no session."""
    path = f"/account/login/{make_link_token(email=staff_email.upper())}/"
    assert staff_refused(client.get(path))
    assert staff_refused(client.post(path))
    assert signed_in_email(client) is None
    assert not LoginLinkUse.objects.exists()


def test_the_link_test_mode_shows_for_a_staff_address_signs_no_one_in(client, staff_email):
    page = ask_for_link(client, staff_email).content.decode()
    assert "TEST MODE: no email needs to arrive" in page
    assert staff_refused(client.post(link_path(page)))
    assert signed_in_email(client) is None


def test_a_link_made_before_the_account_became_staff_is_refused(client):
    ada = customer("ada@example.com")
    ask_for_link(client, "ada@example.com")
    path = emailed_link()
    ada.is_staff = True
    ada.save()
    assert staff_refused(client.get(path))
    assert staff_refused(client.post(path))
    assert signed_in_email(client) is None


def test_a_disabled_account_cannot_sign_in(client):
    customer = sign_in(client, "ada@example.com")
    client.logout()
    customer.is_active = False
    customer.save()
    ask_for_link(client, "ada@example.com")
    page = client.post(emailed_link())
    assert page.status_code == 400
    assert "This account cannot sign in" in page.content.decode()
    assert signed_in_email(client) is None


def test_the_link_leads_back_to_the_page_asked_for_and_never_off_the_site(client):
    order = order_in("completed", email="ada@example.com")
    ask_for_link(client, "ada@example.com", next_url=f"/account/orders/{order.number}/")
    assert follow_link(client, emailed_link())["Location"] == f"/account/orders/{order.number}/"
    client.logout()
    ask_for_link(client, "ada@example.com", next_url="https://evil.example/")
    assert follow_link(client, emailed_link())["Location"] == "/account/"
    client.logout()
    ask_for_link(client, "ada@example.com", next_url="//evil.example/")
    assert follow_link(client, emailed_link())["Location"] == "/account/"


def test_a_malformed_email_gets_the_form_back_with_a_400(client):
    page = ask_for_link(client, "not an email")
    assert page.status_code == 400
    assert "Enter a valid email address." in page.content.decode()
    assert mail.outbox == []


def test_a_mail_server_failure_is_a_page_not_a_500(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr("dashboards.account.links.send_mail", refuse)
    page = ask_for_link(client, "ada@example.com")
    assert page.status_code == 503
    assert "We could not send the email just now" in page.content.decode()
