"""The overview's Needs action: licenses waiting for pool keys, Discord held back (a ban, a
destination switched off and the messages it holds), messages and key emails given up; the
workers card reads /healthz's own report, so the two agree."""

from datetime import timedelta

import pytest
from django.utils import timezone

from licenses.models import KeyEmail
from notifications.models import Delivery, Destination, GlobalRateLimit
from tests.account_support import order_in
from tests.factories import make_product
from tests.mgmt_support import staff_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(staff_member(role="Support"))
    return client


def needs(client) -> list[str]:
    return [words for words, _ in client.get("/mgmt/").context["needs"]]


def test_nothing_is_listed_when_nothing_waits(staff_client):
    order_in("completed", email="ada@example.com")
    assert needs(staff_client) == []
    assert "Nothing waits for you" in staff_client.get("/mgmt/").content.decode()


def test_licenses_waiting_for_pool_keys_are_listed(staff_client):
    pool = make_product(license_kind="pool", name="Game")
    order_in("completed", email="ada@example.com", product=pool, quantity=2)
    assert needs(staff_client) == ["2 licenses wait for pool keys: import keys"]
    assert "Nothing waits for you" not in staff_client.get("/mgmt/").content.decode()


def test_a_switched_off_destination_says_what_it_holds(staff_client):
    ops = Destination.objects.create(name="ops", webhook_id="1", token="t")
    order_in("completed", email="ada@example.com")
    # As the worker does on Discord's 404: switched off, its messages kept.
    Destination.objects.filter(pk=ops.pk).update(
        enabled=False, disabled_reason="Discord answered 404"
    )
    held = Delivery.objects.filter(status="pending").count()
    assert held > 0
    assert needs(staff_client) == [
        f"1 Discord destination is switched off, holding {held} message{'s' * (held > 1)}"
    ]


def test_a_ban_and_given_up_messages_and_emails_are_listed(staff_client):
    Destination.objects.create(name="ops", webhook_id="1", token="t")
    order_in("completed", email="ada@example.com")
    Delivery.objects.update(status="dead")
    KeyEmail.objects.update(status="dead")
    GlobalRateLimit.objects.create(pk=1, banned_since=timezone.now() - timedelta(minutes=1), bans=1)
    found = needs(staff_client)
    assert found[0] == "Discord has banned the shop's address: every message waits"
    assert found[1].endswith("given up: send again")
    assert found[2].endswith("by the mail server: send again")
    links = dict(staff_client.get("/mgmt/").context["needs"])
    assert links[found[2]] == "/admin/licenses/keyemail/?status__exact=dead"
    assert staff_client.get(links[found[2]]).status_code == 200


def test_the_workers_card_agrees_with_healthz(staff_client, client):
    Destination.objects.create(name="ops", webhook_id="1", token="t", enabled=False)
    health = client.get("/healthz").json()
    page = staff_client.get("/mgmt/")
    assert page.context["health"]["status"] == health["status"] == "degraded"
    assert page.context["workers"].keys() == health["workers"].keys()
    assert '<span class="worker degraded">degraded</span>' in page.content.decode()
