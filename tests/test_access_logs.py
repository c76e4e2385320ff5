"""Sign-in links hold a token (which holds the email): the access log lines of gunicorn and
runserver, and Django's own warnings about a refused link, never show one; and no page puts an
email in a URL."""

import io
import logging
import re
import runpy
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core import mail
from django.core.servers.basehttp import WSGIRequestHandler
from django.test import Client
from gunicorn.config import Config

from config.log_format import JSONFormatter
from dashboards.account.links import make_link_token
from tests.account_support import OWNER, order_in

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent
EMAIL = "ada.lovelace@example.com"
Stream = logging.StreamHandler  # the settings' handlers, not pytest's capturing ones


@pytest.fixture
def token() -> str:
    return make_link_token(email=EMAIL)


def gunicorn_logger(folder: Path):
    """The logger gunicorn builds from config/gunicorn.py, writing its logs to files."""
    options = runpy.run_path(str(ROOT / "config/gunicorn.py"))
    config = Config()
    config.set("logger_class", options["logger_class"])
    config.set("access_log_format", options.get("access_log_format", config.access_log_format))
    config.set("accesslog", str(folder / "access.log"))
    config.set("errorlog", str(folder / "error.log"))
    return config.logger_class(config)


def test_gunicorns_access_log_masks_the_token_and_any_email_in_a_url(token, tmp_path):
    logger = gunicorn_logger(tmp_path)
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": f"/account/login/{token}/?email={EMAIL}",
        "PATH_INFO": f"/account/login/{token}/",
        "QUERY_STRING": f"email={EMAIL}",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_REFERER": f"https://shop.example.com/account/login/{token}/",
        "HTTP_USER_AGENT": "Mozilla/5.0",
    }
    response = SimpleNamespace(status="303 See Other", sent=0, headers=[])
    logger.access(response, SimpleNamespace(headers=[]), environ, timedelta(milliseconds=12))

    line = (tmp_path / "access.log").read_text()
    assert "POST /account/login/" in line and " 303 " in line
    assert token not in line and token[:20] not in line
    assert EMAIL not in line and "ada.lovelace" not in line
    assert line.count("/account/login/[hidden]/") == 2  # the request line and the referer


def test_gunicorns_error_log_masks_the_token_of_a_request_that_failed(token, tmp_path):
    logger = gunicorn_logger(tmp_path)
    try:
        raise RuntimeError("boom")
    except RuntimeError:  # as gunicorn's worker logs a request its app failed
        logger.exception("Error handling request %s", f"/account/login/{token}/?email={EMAIL}")
    written = (tmp_path / "error.log").read_text()
    assert "Error handling request /account/login/[hidden]/?email=[hidden]" in written
    assert token not in written and EMAIL not in written


@contextmanager
def written_by(logger_name: str):
    """What the handlers the settings give `logger_name` (or the root) write, as text."""
    logger = logging.getLogger(logger_name)
    handlers = [h for h in logger.handlers or logging.getLogger().handlers if type(h) is Stream]
    assert handlers, f"the settings give {logger_name} no stream handler"
    stream = io.StringIO()
    olds = [handler.setStream(stream) for handler in handlers]
    try:
        yield stream
    finally:
        for handler, old in zip(handlers, olds, strict=True):
            handler.setStream(old)


def test_runservers_access_log_masks_the_token(token):
    """Django's own WSGIRequestHandler.log_message, as runserver calls it after each request."""
    handler = SimpleNamespace(request=None, log_date_time_string=lambda: "07/Dec/2026 10:00:00")
    with written_by("django.server") as log:
        WSGIRequestHandler.log_message(
            handler, '"%s" %s %s', f"GET /account/login/{token}/ HTTP/1.1", "200", "1234"
        )
    line = log.getvalue()
    assert '"GET /account/login/[hidden]/ HTTP/1.1" 200 1234' in line
    assert token not in line


def test_django_s_warning_about_a_refused_link_masks_the_token(client, token):
    """A 400 (an expired or used link) is logged by django.request with the path in it."""
    with written_by("django.request") as log:
        assert client.post(f"/account/login/{token}x/").status_code == 400
    written = log.getvalue()
    assert "Bad Request: /account/login/[hidden]/" in written
    assert token not in written


def test_with_debug_on_no_handler_on_the_way_writes_the_token(client, token, settings):
    """dev.py runs with DEBUG on, where Django's own console handler (on the "django" logger)
    writes django.request's warnings too: every handler a record meets must mask."""
    settings.DEBUG = True
    loggers = [logging.getLogger(name) for name in ("django.request", "django", "")]
    handlers = [
        h
        for log in loggers
        for h in log.handlers
        if isinstance(h, logging.StreamHandler) and not type(h).__module__.startswith("_pytest")
    ]
    stream = io.StringIO()
    olds = [handler.setStream(stream) for handler in handlers]
    try:
        client.get(f"/account/login/{token}x/")
    finally:
        for handler, old in zip(handlers, olds, strict=True):
            handler.setStream(old)
    assert "/account/login/[hidden]/" in stream.getvalue()
    assert token not in stream.getvalue()


def test_json_log_lines_mask_the_token_in_the_request_they_carry(token, rf):
    """LOG_FORMAT=json writes a record's extra fields, and django.request's carry the request."""
    record = logging.makeLogRecord(
        {
            "name": "django.request",
            "msg": "Bad Request: %s",
            "args": (f"/account/login/{token}/",),
            "request": rf.get(f"/account/login/{token}/"),
        }
    )
    line = JSONFormatter().format(record)
    assert token not in line
    assert "/account/login/[hidden]/" in line


def urls_in(html: str) -> list[str]:
    return re.findall(r'(?:href|action|hx-get|hx-post)="([^"]*)"', html)


def test_no_page_puts_an_email_in_a_url():
    order = order_in("failed", email=OWNER)
    client = Client()
    receipt = client.get(f"/orders/{order.public_id}/").content.decode()
    assert "See all my orders" in receipt
    sent = client.post("/account/login/", {"email": OWNER}).content.decode()
    assert "Check your email" in sent
    for html in (receipt, sent):
        assert not [url for url in urls_in(html) if "email" in url or "%40" in url or "@" in url]


def test_see_all_my_orders_on_the_receipt_emails_the_link_to_the_orders_address():
    order = order_in("failed", email=OWNER)
    client = Client()
    receipt = client.get(f"/orders/{order.public_id}/").content.decode()
    form = re.search(r'<form[^>]*action="/account/login/"[^>]*>.*?See all my orders', receipt, re.S)
    assert form, "the receipt's See all my orders is a form posting to the sign-in page"
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form.group(0)))
    assert fields["email"] == OWNER
    assert fields["next"] == f"/account/orders/{order.number}/"
    page = client.post("/account/login/", fields)
    assert "Check your email" in page.content.decode()
    assert mail.outbox[-1].to == [OWNER]
