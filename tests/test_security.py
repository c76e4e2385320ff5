"""Who may see what: every /account and /mgmt URL (taken from the URL resolver, so a new one cannot
escape) as anonymous, the buyer, another customer and staff; guessed order numbers; secrets kept
out of pages, error reports and Discord; customer-provided text escaped in pages and embeds."""

import json
import re
import sys
import time

import pytest
import time_machine
from django.conf import settings
from django.contrib import admin
from django.core.cache import cache
from django.test import Client, RequestFactory, override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.views.debug import ExceptionReporter, get_exception_reporter_class

from dashboards.account.links import make_link_token
from licenses.activations import activate
from licenses.models import KeyEmail, License
from notifications.embeds import order_embed
from notifications.models import Delivery, Destination, Notification
from notifications.templatetags.discord import as_discord_shows
from orders import commands as order_commands
from orders.gateways.offline import OfflineGateway
from orders.models import LicenseKind, StripeEvent
from orders.webhooks import sign_payload
from testkit.stripe_objects import make_event, refund_obj
from tests.account_support import OWNER, client_as, order_in, sign_in
from tests.factories import make_order, make_product

pytestmark = pytest.mark.django_db
WHO = ["anonymous", "owner", "other", "staff"]
PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")
TOKEN = "Sup3rSecretWebhookToken_abcdefghijklmnopqrstuvwxyz0123456789-ABCDEFGHIJ"


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()


def routes(prefixes: tuple[str, ...]) -> list[str]:
    """Every route under `prefixes`, as written in the URLconf (with its <parameters>)."""

    def walk(patterns, prefix: str):
        for pattern in patterns:
            route = prefix + str(pattern.pattern).lstrip("^").rstrip("$").replace("\\/", "/")
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                yield route

    return sorted(r for r in walk(get_resolver().url_patterns, "") if r.startswith(prefixes))


@pytest.fixture
def staff_client() -> Client:
    return client_as("staff")


@pytest.fixture
def owners_world():
    """The buyer's completed order with a key, a Discord delivery and everything a URL may name."""
    destination = Destination.objects.create(
        name="Sales", webhook_id="123456789012345678", token=TOKEN
    )
    product = make_product(license_kind=LicenseKind.GENERATED)
    order = order_in("completed", email=OWNER, product=product)
    license = License.objects.get(order=order)
    values = {
        "number": order.number,
        "public_id": str(order.public_id),
        "token": "not-a-real-link-token",
        # <pk> names what the segment before it names.
        "licenses/<int:pk>": str(license.pk),
        "deliveries/<int:pk>": str(
            Delivery.objects.get(
                notification__order=order, notification__event="order.completed"
            ).pk
        ),
        "notifications/<int:pk>": str(destination.pk),
        "emails/<int:pk>": str(KeyEmail.objects.filter(order=order).first().pk),
        "slug": product.slug,
        "license": str(license.public_id),
        "device": str(
            activate(license, fingerprint="owners-laptop", label="laptop").activation.public_id
        ),
    }
    return order, license, values


def fill(route: str, values: dict[str, str]) -> str:
    for segment, value in values.items():
        if "/" in segment:
            route = route.replace(segment, segment.split("/")[0] + "/" + value)

    def value(match: re.Match) -> str:
        name = match.group(1)
        assert name in values, f"teach tests/test_security.py what {match.group(0)} is in {route!r}"
        return values[name]

    return "/" + PARAMETER.sub(value, route)


def body_of(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


def is_login_redirect(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(
        ("/admin/login/", "/account/login/", f"/{settings.MGMT_PATH}/login/")
    )


ACCOUNT_PUBLIC = {"account/login/", "account/login/<str:token>/", "account/logout/"}


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("method", ["get", "post"])
def test_every_account_and_mgmt_url_answers_only_whom_it_should(owners_world, who, method):
    order, license, values = owners_world
    mgmt = f"{settings.MGMT_PATH}/"
    checked = routes(("account/", mgmt))
    assert "account/orders/<str:number>/" in checked
    for route in checked:
        url = fill(route, values)
        response = getattr(client_as(who), method)(url)  # (a logout must not end the next)
        html = body_of(response)
        where = f"{method.upper()} {url} as {who}: {response.status_code}"
        assert response.status_code < 500, where
        if route.startswith(mgmt):
            if who == "staff":
                assert not is_login_redirect(response), where
            else:  # customers and strangers get the login, never a page
                assert is_login_redirect(response), where
                assert OWNER not in html, where
        elif route in ACCOUNT_PUBLIC:
            continue
        elif "<" not in route:  # the list: the login for strangers, one's own orders otherwise
            if who == "anonymous":
                assert is_login_redirect(response), where
            assert order.number not in html or who == "owner", where
        elif who != "owner":  # an order's pages and actions: nobody else's, not even staff's
            # (a 405 to the wrong method says nothing of the order; the 404 may echo the URL)
            assert response.status_code in (404, 405), where
            assert OWNER not in html, where
        # A key is the buyer's; staff see one only by asking for it, which is recorded.
        reveal = who == "staff" and method == "post" and route.endswith("/reveal/")
        assert license.key not in html or who == "owner" or reveal, where
        assert TOKEN not in html, where


HUGE = "9" * 30  # past any 64-bit id


@pytest.mark.parametrize("who", ["anonymous", "staff"])
def test_no_address_or_parameter_makes_a_500(owners_world, who):
    """A NUL byte (which PostgreSQL refuses in any text) in each part of every URL, and numbers
    past any id or date in every parameter staff pages read: a 4xx, never a 500."""
    client = client_as(who)
    hostile = {name: "x%00y" for name in ("number", "public_id", "token", "slug", "session_id")}
    # uuid converters refuse anything else before a view runs: the nil UUID stands in for them.
    hostile |= dict.fromkeys(("license", "device"), "00000000-0000-0000-0000-000000000000")
    hostile |= {segment: HUGE for segment in owners_world[2] if "/" in segment}
    for route in routes(("account/", f"{settings.MGMT_PATH}/", "orders/", "checkout/", "test-")):
        url = fill(route, hostile)
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code < 500, f"{method.upper()} {url}: {response.status_code}"
            body_of(response)
    queries = [
        "/checkout/success/?session_id=cs_%00",
        "/account/?page=" + HUGE,
        "/account/login/?next=%00&email=%00",
        f"/{settings.MGMT_PATH}/orders/?q=%00&status=%00&sort=%00&since=%00",
        f"/{settings.MGMT_PATH}/orders/?after={HUGE}_{HUGE}&sort=total",
        f"/{settings.MGMT_PATH}/orders/?until=9999-12-31",
        f"/{settings.MGMT_PATH}/orders/export.csv?until=9999-12-31&since=0001-01-01",
        f"/{settings.MGMT_PATH}/notifications/?before={HUGE}&status=%00",
        f"/{settings.MGMT_PATH}/events/?outcome=%00",
        f"/admin/orders/order/{HUGE}/change/",
        f"/admin/orders/order/?p={HUGE}&q=%00",
    ]
    for url in queries:
        response = client.get(url)
        assert response.status_code < 500, f"{url}: {response.status_code}"
        body_of(response)  # a streamed CSV fails while it streams, not before


def test_guessed_order_numbers_are_all_the_same_404():
    theirs = [order_in("completed", email=OWNER).number for _ in range(5)]
    client = client_as("other")
    made_up = [n[:-1] + ("Z" if n[-1] != "Z" else "Y") for n in theirs] + ["00000000"]
    bodies = set()
    for number in theirs + made_up:
        response = client.get(f"/account/orders/{number}/")
        assert response.status_code == 404
        html = response.content.decode().replace(number, "N")
        bodies.add(re.sub(r'name="csrfmiddlewaretoken" value="\w+"', "", html))
    assert len(bodies) == 1, (
        "a guessed number must not tell an order that exists from one that does not"
    )


SECRETS = {
    "SECRET_KEY": "django-secret-for-the-report-test-0123456789abcdef",
    "STRIPE_SECRET_KEY": "sk_test_reportTestSecret0123456789",
    "STRIPE_WEBHOOK_SECRET": "whsec_reportTestSecret0123456789",
    "LICENSE_HASH_KEY": "license-hash-key-for-the-report-test",
    "DISCORD_WEBHOOK_URL": f"https://discord.com/api/webhooks/123456789012345678/{TOKEN}",
}


@override_settings(
    **SECRETS,
    DEBUG=True,
    CACHES={
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "redis://:redisPassw0rdForReport@127.0.0.1:6379/0",
        }
    },
)
def test_error_reports_hold_no_secret():
    """What DEBUG's error page and an emailed error report (text and HTML) would show: settings are
    listed there, and Django hides only names with KEY, SECRET, TOKEN, PASS… in them."""
    request = RequestFactory().get("/account/", HTTP_COOKIE="sessionid=abc")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        reporter = ExceptionReporter(request, *sys.exc_info())
        reports = [reporter.get_traceback_html(), reporter.get_traceback_text()]
    for report in reports:
        for name, secret in SECRETS.items():
            assert secret not in report, name
        assert TOKEN not in report
        assert "redisPassw0rdForReport" not in report


def test_an_error_report_from_a_sign_in_link_holds_no_token(client, monkeypatch):
    """DEBUG's page and emailed reports show the URL, the request and each frame's variables:
    a sign-in link's token (which signs its holder in) must be in none of them."""
    token = make_link_token(email=OWNER)

    def broken(token: str):  # as check_link fails with the token in hand
        raise RuntimeError("the database went away")

    monkeypatch.setattr("dashboards.account.views.check_link", broken)
    with pytest.raises(RuntimeError) as failure:
        client.get(f"/account/login/{token}/")
    tb = failure.tb  # as a server would report it: from Django's request handler on
    while "django/core/handlers/" not in tb.tb_frame.f_code.co_filename:
        tb = tb.tb_next
    request = tb.tb_frame.f_locals["request"]
    reporter = get_exception_reporter_class(request)(request, failure.type, failure.value, tb)
    for report in (reporter.get_traceback_html(), reporter.get_traceback_text()):
        assert token not in report and token[:24] not in report
        assert "/account/login/[hidden]/" in report


def test_pages_never_show_a_webhook_token_or_another_persons_key(owners_world, staff_client):
    """The admin lists and edits what holds tokens and keys: neither is ever on its pages."""
    _, license, _ = owners_world

    for model in admin.site._registry:
        meta = model._meta
        listing = staff_client.get(f"/admin/{meta.app_label}/{meta.model_name}/")
        assert listing.status_code == 200, meta.label
        html = listing.content.decode()
        assert TOKEN not in html and license.key not in html, meta.label
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            change = staff_client.get(
                f"/admin/{meta.app_label}/{meta.model_name}/{first.pk}/change/"
            )
            html = change.content.decode()
            assert TOKEN not in html and license.key not in html, meta.label


def test_discord_never_receives_a_license_key(owners_world):
    _, license, _ = owners_world
    sent = json.dumps([n.embed for n in Notification.objects.all()])
    assert license.key not in sent


# A quoted local part may hold markup, but no space: addresses with spaces or invisible
# characters are refused (accounts.addresses).
HOSTILE_EMAIL = '"<img/src=x/onerror=alert(1)>[pay_here](https://evil.example)"@example.com'


def test_customer_provided_text_is_escaped_on_every_page(staff_client):
    product = make_product(name="<b>Pro</b> & Co")
    order = order_in("completed", email=HOSTILE_EMAIL, product=product)
    buyer = Client()
    sign_in(buyer, HOSTILE_EMAIL)
    pages = {
        "account list": buyer.get("/account/"),
        "account order": buyer.get(f"/account/orders/{order.number}/"),
        "receipt": Client().get(f"/orders/{order.public_id}/"),
        "admin orders": staff_client.get("/admin/orders/order/"),
        "admin order": staff_client.get(f"/admin/orders/order/{order.pk}/change/"),
    }
    notification = Notification.objects.filter(order=order).first()
    pages["admin preview"] = staff_client.get(
        f"/admin/notifications/notification/{notification.pk}/change/"
    )
    mgmt = f"{settings.MGMT_PATH}/"
    for route in routes((mgmt,)):  # every staff page that names nothing but the order
        if set(PARAMETER.findall(route)) <= {"number"} and not route.endswith(".csv"):
            response = staff_client.get(fill(route, {"number": order.number}))
            if response.status_code != 405:  # actions answer POST only
                pages[route] = response
    for name, response in pages.items():
        html = response.content.decode()
        assert response.status_code == 200, name
        assert "<img/src=x" not in html, name
        assert "<b>Pro</b>" not in html, name


def test_customer_provided_text_cannot_format_or_link_in_an_embed():
    """Discord renders markdown and masked links in embed fields: a buyer's email is shown as
    text, never as a link to somewhere else."""
    order = make_order(email=HOSTILE_EMAIL)
    customer = next(f["value"] for f in order_embed("order.completed", order)["fields"])
    assert "[pay_here](https://evil.example)" not in customer
    unescaped = re.sub(r"\\(.)", r"\1", customer)
    assert unescaped == HOSTILE_EMAIL


TYPED = "[click](https://evil.example) **x** __u__ ~~s~~ `c` ||spoiler|| <@&1> :tada:"
LINE_MARKUP = "\n# Head\n-# small\n> quote\n- item\n1. first\n```code```"
MARKDOWN_CHARACTERS = re.compile(r"[*_~`|>#\[\]()<-]|://|:tada:")


def unescaped(text: str) -> set[str]:
    """The markdown Discord would read as markup (and autolinks, emoji): what is not escaped with
    a backslash (Discord's timestamps, which the shop writes on purpose, aside)."""
    text = re.sub(r"<t:-?\d+(?::[tTdDfFR])?>", "", text)
    text = re.sub(r"\\.", "", text, flags=re.DOTALL)
    return set(MARKDOWN_CHARACTERS.findall(text)) | set(re.findall(r"(?m)^\d+\.", text))


def test_everything_typed_by_buyers_and_staff_shows_as_typed_in_discord(
    staff, django_capture_on_commit_callbacks
):
    """Discord renders markdown in embed titles, descriptions and field values: a product name,
    an email, a staff note or a refund reason must never become a link, a heading or bold."""
    product = make_product(
        name="Pro " + TYPED + LINE_MARKUP, license_kind=LicenseKind.POOL, stock_alert_threshold=1
    )
    email = '"' + TYPED.replace(" ", "") + '"@example.com'
    offline = order_in("pending", email=email, product=product)
    order_commands.complete.run(offline, by=staff, note="**cash** [receipt](https://evil.example)")
    paid = order_in("pending", email=email, product=product)
    with django_capture_on_commit_callbacks(execute=True):  # its events are delivered then
        OfflineGateway().pay(paid.stripe_session_id)  # a charge the offline gateway can refund
    paid.refresh_from_db()
    order_commands.refund.run(
        paid, by=staff, amount_cents=paid.total_cents, reason="Refund " + TYPED, seen_returned=0
    )
    embeds = [n.embed for n in Notification.objects.all()]
    assert {"order.completed", "order.refunded", "license.stock_low"} <= set(
        Notification.objects.values_list("event", flat=True)
    )
    # The staff note stays with staff (the audit record): it reaches neither Discord nor buyers.
    assert "**cash**" not in str(embeds)
    typed = [TYPED, "Refund " + TYPED]
    shown = []
    for embed in embeds:
        texts = [embed.get("title", ""), embed.get("description", "")]
        texts += [field["value"] for field in embed.get("fields", [])]
        for text in texts:
            assert unescaped(text) == set(), text
            shown.append(as_discord_shows(text))
    everything = "\n".join(shown)
    for text in typed:
        assert text in everything
    assert "# Head" in everything and "[click](https://evil.example)" in everything


def test_a_webhook_replayed_after_the_tolerance_is_refused(client, settings):
    """Someone who captured a delivery cannot play it again later: its signature has aged out,
    even for an event the shop never stored (a refund, here, that would change the order)."""
    order = order_in("completed", email=OWNER)
    event = make_event("refund.created", refund_obj(order, "re_replayed", order.total_cents))
    body = json.dumps(event).encode()
    signed_at = int(time.time())
    header = sign_payload(body, settings.STRIPE_WEBHOOK_SECRET, signed_at)
    with time_machine.travel(signed_at + settings.STRIPE_WEBHOOK_TOLERANCE + 1, tick=False):
        response = client.post(
            "/stripe/webhook/", body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
        )
    assert response.status_code == 400
    order.refresh_from_db()
    assert order.status == "completed"
    assert not StripeEvent.objects.filter(id=event["id"]).exists()


def test_the_embed_preview_draws_escaped_text_as_discord_does(staff_client):
    order = make_order(email=HOSTILE_EMAIL)
    notification = Notification.objects.create(
        event="order.completed", order=order, embed=order_embed("order.completed", order)
    )
    html = staff_client.get(f"/admin/notifications/notification/{notification.pk}/change/")
    values = re.findall(r'<div class="embed-field-value">([^<]*)</div>', html.content.decode())
    assert (
        "&quot;&lt;img/src=x/onerror=alert(1)&gt;[pay_here](https://evil.example)&quot;@example.com"
        in values
    )
