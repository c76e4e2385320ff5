"""Staff sign in with a password and a time-based code (TOTP, django-otp) whenever
STAFF_2FA_REQUIRED is on (by default outside the offline test mode): /mgmt and /admin answer
nothing else until the code is given, and a staff member without an authenticator is walked
through setting one up first."""

import os
import re
import subprocess
import sys

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Group
from django.core import mail
from django.test import Client
from django.views.debug import ExceptionReporter
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from dashboards.mgmt.views.overview import overview
from tests.account_support import ask_for_link, customer, emailed_link
from tests.mgmt_support import fill, mgmt_patterns

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"
VERIFY, SETUP = "/admin/verify/", "/admin/verify/setup/"


@pytest.fixture(autouse=True)
def required(settings):
    settings.STAFF_2FA_REQUIRED = True


def staff_user(email: str = "ops@example.com", **fields) -> User:
    """A staff member in the Support role (any role reads /mgmt's overview)."""
    user = User.objects.create_user(email, password=PASSWORD, is_staff=True, **fields)
    user.groups.add(Group.objects.get(name="Support"))
    return user


def password_sign_in(client: Client, email: str = "ops@example.com", next_url: str = "/mgmt/"):
    response = client.post(
        f"/admin/login/?next={next_url}",
        {"username": email, "password": PASSWORD, "next": next_url},
    )
    assert response.status_code == 302, response.content.decode()[:500]
    return response


def code_for(device: TOTPDevice) -> str:
    """What the staff member's authenticator app shows now."""
    device.refresh_from_db()
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def emailed_setup_code(email: str = "ops@example.com") -> str:
    """The code the last setup email to `email` carries."""
    sent = [m for m in mail.outbox if m.to == [email] and "authenticator" in m.subject]
    return re.search(r"\b(\d{6})\b", sent[-1].body).group(1)


def prove_mailbox(client: Client, email: str = "ops@example.com", next_url: str = "/mgmt/"):
    """The setup page's first step: the code emailed to the staff member's own address."""
    client.post(f"{SETUP}?next={next_url}", {"send_code": "1", "next": next_url})
    done = client.post(SETUP, {"mailbox_code": emailed_setup_code(email), "next": next_url})
    assert done.status_code == 302, done.content.decode()[:500]


def enrolled(user: User) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def test_a_staff_member_without_an_authenticator_sets_one_up_before_reaching_mgmt(client):
    user = staff_user()
    password_sign_in(client)
    first = client.get("/mgmt/")
    assert first.status_code == 302 and first["Location"] == f"{VERIFY}?next=/mgmt/"
    to_setup = client.get(first["Location"])
    assert to_setup["Location"] == f"{SETUP}?next=/mgmt/"
    prove_mailbox(client)

    page = client.get(to_setup["Location"])
    html = page.content.decode()
    device = TOTPDevice.objects.get(user=user)
    assert not device.confirmed
    secret = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', html).group(1)
    assert secret.replace(" ", "") in device.config_url
    assert "<svg" in html  # the QR code of device.config_url, otpauth://totp/…
    assert client.get("/mgmt/").status_code == 302  # not before the code confirms it

    done = client.post(to_setup["Location"], {"code": code_for(device)})
    assert done.status_code == 302 and done["Location"] == "/mgmt/"
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/mgmt/").status_code == 200
    assert client.get("/admin/").status_code == 200


def test_the_secret_is_shown_once_and_never_after_the_authenticator_is_confirmed(client):
    user = staff_user()
    password_sign_in(client)
    prove_mailbox(client)
    first = client.get(f"{SETUP}?next=/mgmt/").content.decode()
    again = client.get(f"{SETUP}?next=/mgmt/").content.decode()
    secrets = [
        re.search(r'<code class="secret">([^<]+)</code>', p).group(1) for p in (first, again)
    ]
    assert secrets[0] != secrets[1]  # a reload makes a new one; the first is gone
    assert TOTPDevice.objects.filter(user=user).count() == 1
    device = TOTPDevice.objects.get(user=user)
    client.post(SETUP, {"code": code_for(device)})

    later = client.get(SETUP)
    assert later.status_code == 302 and later["Location"].startswith(VERIFY)
    for url in (VERIFY, f"/admin/otp_totp/totpdevice/{device.pk}/change/",
                "/admin/otp_totp/totpdevice/"):  # fmt: skip
        html = client.get(url).content.decode()
        assert device.key not in html and secrets[1].replace(" ", "") not in html, url
        assert "otpauth://" not in html, url


def test_an_error_report_from_the_setup_page_holds_no_secret(client, monkeypatch):
    """DEBUG's page and emailed reports list each frame's variables: the new secret's and the
    code's must not be there."""
    user = staff_user()
    password_sign_in(client)

    def broken(*args, **kwargs):
        raise RuntimeError("the template failed")

    prove_mailbox(client)
    monkeypatch.setattr("accounts.second_factor.render", broken)
    code = "typed" + "-code-" + "sentinel"  # as typed: never whole in the source a report shows
    with pytest.raises(RuntimeError) as failure:
        client.post(SETUP, {"code": code})
    # The report a server would make: from Django's request handler on (the test's and the
    # test client's own frames hold the code as they sent it).
    tb = failure.tb
    while "django/core/handlers/" not in tb.tb_frame.f_code.co_filename:
        tb = tb.tb_next
    request = tb.tb_frame.f_locals["request"]
    reporter = ExceptionReporter(request, failure.type, failure.value, tb)
    reports = [reporter.get_traceback_text(), reporter.get_traceback_html()]
    device = TOTPDevice.objects.get(user=user)
    secret = re.search(r"secret=([A-Z2-7]+)", device.config_url).group(1)
    for report in reports:
        assert secret not in report and device.key not in report
        assert code not in report


def test_a_signed_in_staff_member_gives_the_code_again_in_a_new_session(client):
    device = enrolled(staff_user())
    password_sign_in(client, next_url="/admin/")
    assert client.get("/admin/")["Location"] == f"{VERIFY}?next=/admin/"
    page = client.get(f"{VERIFY}?next=/admin/")
    assert "code from your authenticator app" in page.content.decode()
    answer = client.post(f"{VERIFY}?next=/admin/", {"code": code_for(device)})
    assert answer["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_a_wrong_code_is_refused_and_repeated_guesses_must_wait(client):
    device = enrolled(staff_user())
    password_sign_in(client)
    wrong = f"{(int(code_for(device)) + 1) % 1_000_000:06d}"
    refused = client.post(VERIFY, {"code": wrong})
    assert refused.status_code == 400
    assert "That code is not right" in refused.content.decode()
    # django-otp's throttle: after a failure the next try must wait, even with the right code.
    early = client.post(VERIFY, {"code": code_for(device)})
    assert early.status_code == 429
    assert "Too many wrong codes: try again in" in early.content.decode()
    assert client.get("/mgmt/").status_code == 302


def test_a_code_works_once(client):
    device = enrolled(staff_user())
    password_sign_in(client)
    code = code_for(device)
    assert client.post(VERIFY, {"code": code}).status_code == 302
    other = Client()
    password_sign_in(other)
    assert other.post(VERIFY, {"code": code}).status_code == 400
    assert other.get("/mgmt/").status_code == 302


def test_every_mgmt_and_admin_page_waits_for_the_code(client):
    staff_user(is_superuser=True)
    password_sign_in(client)
    urls = ["/admin/", "/admin/orders/order/", "/admin/accounts/user/", "/admin/login/"]
    values = {"number": "ABCDEFGH", "pk": 1}
    urls += [fill(pattern, values) for pattern in mgmt_patterns()]
    for url in urls:
        for method in (client.get, client.post):
            response = method(url)
            assert response.status_code == 302, (url, response.status_code)
            assert response["Location"].startswith(VERIFY), url


def test_mgmt_views_ask_for_the_code_themselves_not_only_the_middleware(rf):
    """Defence in depth: a /mgmt view reached without StaffAreaMiddleware still waits."""
    request = rf.get("/mgmt/")
    request.user, request.session = staff_user(), {}
    request.user.is_verified = lambda: False
    response = overview(request)
    assert response.status_code == 302 and response["Location"].startswith(VERIFY)


def test_without_the_requirement_the_password_is_enough(client, settings):
    settings.STAFF_2FA_REQUIRED = False
    staff_user()
    password_sign_in(client)
    assert client.get("/mgmt/").status_code == 200


def test_a_session_begun_with_an_emailed_link_never_reaches_staff_pages(client, settings):
    """Even with the code not required: a customer signed in by link who is later made staff
    signs in again with the password before any staff page."""
    settings.STAFF_2FA_REQUIRED = False
    ada = customer("ada@example.com")
    ask_for_link(client, "ada@example.com")
    path = emailed_link()
    client.post(path)
    assert client.session.get(SESSION_KEY)
    ada.is_staff = True
    ada.save()
    for url in ("/mgmt/", "/admin/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert not client.session.get(SESSION_KEY)


def required_by_default(**env: str) -> str:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEBUG", "STRIPE_SECRET_KEY", "STAFF_2FA_REQUIRED")
    }
    code = "from django.conf import settings as s; print(s.STAFF_2FA_REQUIRED)"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
        cwd=settings.BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
    )
    return result.stdout.strip() or result.stderr


def test_the_code_is_required_by_default_except_in_the_offline_test_mode_dev_py_runs():
    assert required_by_default(DEBUG="1") == "False"  # dev.py: DEBUG on, no Stripe key
    assert required_by_default(DEBUG="1", STRIPE_SECRET_KEY="sk_test_x") == "True"
    assert required_by_default() == "True"  # DEBUG off
    assert required_by_default(STAFF_2FA_REQUIRED="0") == "False"


# Setting up an authenticator needs the password and the staff member's own mailbox: whoever
# learnt a password before its owner set one up must not make his own phone the second factor.


def test_the_password_alone_never_shows_a_secret_nor_confirms_a_device(client):
    user = staff_user()
    password_sign_in(client)
    page = client.get(f"{SETUP}?next=/mgmt/")
    html = page.content.decode()
    assert page.status_code == 200
    assert (
        "o***@example.com" in html and "Scan this QR" not in html and 'class="secret"' not in html
    )
    assert mail.outbox == []  # a GET (a page another site loads) sends nothing
    html = client.post(SETUP, {"send_code": "1"}).content.decode()
    assert not TOTPDevice.objects.filter(user=user).exists()
    [sent] = mail.outbox
    assert sent.to == ["ops@example.com"] and emailed_setup_code() not in html

    refused = client.post(SETUP, {"code": "123456", "next": "/mgmt/"})
    assert refused.status_code == 400
    assert not TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    assert client.get("/mgmt/").status_code == 302


def test_a_wrong_emailed_code_is_refused_and_five_wrong_void_it(client):
    staff_user()
    password_sign_in(client)
    client.post(SETUP, {"send_code": "1"})
    right = emailed_setup_code()
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(4):
        answer = client.post(SETUP, {"mailbox_code": wrong})
        assert answer.status_code == 400
        assert "not the code we emailed" in answer.content.decode()
    answer = client.post(SETUP, {"mailbox_code": wrong})
    assert "Ask for a new code" in answer.content.decode()
    answer = client.post(SETUP, {"mailbox_code": right})  # void now
    assert answer.status_code == 400
    assert 'class="secret"' not in client.get(SETUP).content.decode()


def test_the_emailed_code_expires_after_15_minutes_and_a_new_one_can_be_asked_for(client):
    staff_user()
    password_sign_in(client)
    with time_machine.travel("2026-12-07 10:00Z", tick=False):
        client.post(SETUP, {"send_code": "1"})
    old = emailed_setup_code()
    with time_machine.travel("2026-12-07 10:16Z", tick=False):
        late = client.post(SETUP, {"mailbox_code": old})
        assert late.status_code == 400 and "expired" in late.content.decode()
        client.post(SETUP, {"send_code": "1"})
        assert len(mail.outbox) == 2
        assert client.post(SETUP, {"mailbox_code": emailed_setup_code()}).status_code == 302
        assert 'class="secret"' in client.get(SETUP).content.decode()


def test_setup_emails_are_limited(client, settings):
    staff_user()
    password_sign_in(client)
    for _ in range(settings.STAFF_SETUP_EMAILS_PER_HOUR + 2):
        answer = client.post(SETUP, {"send_code": "1"})
    assert answer.status_code == 429
    assert "Too many codes" in answer.content.decode()
    assert len(mail.outbox) == settings.STAFF_SETUP_EMAILS_PER_HOUR


def test_a_mail_server_outage_is_said_in_words_and_shows_no_secret(client, settings):
    settings.EMAIL_BACKEND = "tests.test_key_emails.DownBackend"
    staff_user()
    password_sign_in(client)
    page = client.post(SETUP, {"send_code": "1"})
    html = page.content.decode()
    assert page.status_code == 503
    assert "could not be emailed" in html and 'class="secret"' not in html


def test_the_proof_belongs_to_the_account_that_gave_it(client):
    """A proof given in a session does not carry over to another staff account signed in later
    in the same browser."""
    staff_user()
    staff_user("other@example.com")
    password_sign_in(client)
    prove_mailbox(client)
    client.post("/admin/logout/")
    password_sign_in(client, "other@example.com")
    html = client.get(SETUP).content.decode()
    assert 'class="secret"' not in html and "o***@example.com" in html


def test_a_staff_member_who_has_not_given_the_code_can_sign_out(client):
    staff_user()
    enrolled(User.objects.get(email="ops@example.com"))
    password_sign_in(client)
    page = client.get(VERIFY).content.decode()
    assert 'action="/admin/logout/"' in page and 'method="post"' in page

    client.post("/admin/logout/")

    assert SESSION_KEY not in client.session
    assert client.get("/mgmt/")["Location"].startswith("/admin/login/")


def test_guesses_sent_in_parallel_do_not_get_more_tries(client):
    """Parallel requests of one session each read the tries the session had: the count that
    stops guessing is kept in the shared cache as well. Here a session written back with its
    old count stands for them."""
    from accounts.second_factor import SETUP_CODE

    staff_user()
    password_sign_in(client)
    client.post(SETUP, {"send_code": "1"})
    right = emailed_setup_code()
    stale = dict(client.session[SETUP_CODE])
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(5):
        client.post(SETUP, {"mailbox_code": wrong})
    session = client.session
    session[SETUP_CODE] = stale  # as the parallel requests' last write leaves it
    session.save()

    answer = client.post(SETUP, {"mailbox_code": right})
    assert answer.status_code == 400 and "Ask for a new code" in answer.content.decode()
    assert 'class="secret"' not in client.get(SETUP).content.decode()
