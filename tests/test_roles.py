"""The role matrix (issue 19): every /mgmt and /admin URL, read from the resolver and the admin's
registry, GET and POST, for anonymous visitors, a customer, a staff account with no role, and
Support, Finance and Owner. The expectations are written out here, not read from accounts.roles,
so a permission that moves to another role fails this test."""

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from licenses.models import KeyEmail, PoolKey
from notifications.models import Delivery, Destination
from notifications.outbox import enqueue
from tests.account_support import order_in
from tests.factories import make_product
from tests.mgmt_support import customer_member, fill, mgmt_patterns, staff_member

pytestmark = pytest.mark.django_db

SUPPORT = {"read", "retry", "resend_keys", "resend_notification", "reset_devices", "own_settings"}
FINANCE = SUPPORT | {
    "refund", "complete", "settle", "export", "reveal", "suspend", "simulate_dispute",
}  # fmt: skip
OWNER = FINANCE | {"destinations", "import_keys", "staff"}
ROLES = {"no role": set(), "Support": SUPPORT, "Finance": FINANCE, "Owner": OWNER}

# What each /mgmt URL needs. A new URL fails test_the_table_names_every_mgmt_url until it is here.
MGMT = {
    "overview": "read", "orders": "read", "order": "read", "notifications": "read",
    "events": "read", "fraud_warnings": "read", "licenses": "read", "export": "export", "complete": "complete",
    "refund": "refund", "retry": "retry", "resend_keys": "resend_keys", "settle": "settle",
    "open_test_dispute": "simulate_dispute", "close_test_dispute_won": "simulate_dispute",
    "close_test_dispute_lost": "simulate_dispute", "raise_test_fraud_warning": "simulate_dispute",
    "open_test_review": "simulate_dispute", "approve_test_review": "simulate_dispute", "suspend_license": "suspend",
    "reinstate_license": "suspend", "reveal_key": "reveal", "resend_delivery": "resend_notification",
    "reset_activations": "reset_devices", "send_email_again": "resend_keys",
    "test_destination": "destinations", "enable_destination": "destinations",
    "disable_destination": "destinations", "import_keys": "import_keys",
    "settings": "own_settings",
}  # fmt: skip


@pytest.fixture
def world():
    order = order_in("completed", email="ada@example.com")
    destination = Destination.objects.create(name="shop", webhook_id="1", token="t")
    notification = enqueue("order.completed", {"title": "x"}, order=order)
    delivery = Delivery.objects.get(notification=notification, destination=destination)
    pool = make_product(license_kind="pool", slug="pool", name="Pool game")
    PoolKey.objects.create(product=pool, key="K-1", key_hash="k1")
    return {
        "number": order.number,
        "license": order.licenses.get().pk,
        "destination": destination.pk,
        "delivery": delivery.pk,
        "email": KeyEmail.objects.filter(order=order).first().pk,
    }


def mgmt_urls(world: dict) -> list[tuple[str, str]]:
    found = []
    for pattern in mgmt_patterns():
        pk = world["license"]
        if "destination" in pattern.name:
            pk = world["destination"]
        elif "delivery" in pattern.name:
            pk = world["delivery"]
        elif "email" in pattern.name:
            pk = world["email"]
        found.append((pattern.name, fill(pattern, {"number": world["number"], "pk": pk})))
    return found


def client_for(who: str) -> Client:
    client = Client()
    if who == "customer":
        client.force_login(customer_member())
    elif who != "anonymous":
        email = f"{who.replace(' ', '-').lower()}@example.com"
        client.force_login(staff_member(email, role=None if who == "no role" else who))
    return client


def test_the_table_names_every_mgmt_url(world):
    assert {name for name, _ in mgmt_urls(world)} == set(MGMT)


@pytest.mark.parametrize("who", ["anonymous", "customer"])
def test_nobody_but_staff_reaches_mgmt_or_the_admin(world, who):
    client = client_for(who)
    urls = [url for _, url in mgmt_urls(world)] + admin_urls()
    for url in urls:
        for method in (client.get, client.post):
            response = method(url)
            assert response.status_code == 302, (url, method.__name__)
            assert response["Location"].startswith("/admin/login/"), url


@pytest.mark.parametrize("role", list(ROLES))
def test_each_role_gets_exactly_the_mgmt_pages_and_actions_it_may(world, role):
    client = client_for(role)
    for name, url in mgmt_urls(world):
        allowed = MGMT[name] in ROLES[role]
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            if allowed and method == "get":
                assert response.status_code == 200, (name, role)
            elif allowed:  # a page only reads (405); an action runs, is refused, or asks again
                reading = MGMT[name] == "read" or name == "export"
                expected = (405,) if reading else (200, 303, 400)
                assert response.status_code in expected, (name, role, response.status_code)
            else:
                assert response.status_code == 403, (name, method, role)
                assert "Your role does not allow" in response.content.decode(), name


# The admin: what each role reads there and may change. The shop's records are read by every
# role; the catalog, destinations and staff accounts are the Owner's to change.
SHOP_APPS = {"orders", "licenses", "notifications", "audit"}
OWNER_EDITS = {"orders.product", "notifications.destination", "accounts.user", "auth.group"}


def admin_urls() -> list[str]:
    urls = [reverse("admin:index")]
    for model in admin.site._registry:
        meta = model._meta
        urls += [
            reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"),
            reverse(f"admin:{meta.app_label}_{meta.model_name}_add"),
        ]
        first = model.objects.order_by("pk").first()
        if first is not None:
            urls.append(
                reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[first.pk])
            )
    return urls


def admin_expectations(role: str) -> list[tuple[str, str, bool]]:
    """(url, method, allowed) for every admin URL."""
    can = ROLES[role]
    expected = [(reverse("admin:index"), "get", True)]
    for model in admin.site._registry:
        meta = model._meta
        label = f"{meta.app_label}.{meta.model_name}"
        reads = meta.app_label in SHOP_APPS or "staff" in can
        edits = "staff" in can and label in OWNER_EDITS  # authenticators: enrolled, not added
        base = f"admin:{meta.app_label}_{meta.model_name}"
        expected += [(reverse(f"{base}_changelist"), "get", reads and bool(can))]
        expected += [(reverse(f"{base}_add"), method, edits) for method in ("get", "post")]
        first = model.objects.order_by("pk").first()
        if first is not None:
            change = reverse(f"{base}_change", args=[first.pk])
            expected += [(change, "get", reads and bool(can)), (change, "post", edits)]
    return expected


@pytest.mark.parametrize("role", list(ROLES))
def test_each_role_reads_and_changes_in_the_admin_what_it_may(world, role):
    KeyEmail.objects.exists()  # the world made a key email: its admin has a change page
    client = client_for(role)
    for url, method, allowed in admin_expectations(role):
        response = getattr(client, method)(url)
        if allowed:
            assert response.status_code in (200, 302), (url, method, role)
        else:
            assert response.status_code == 403, (url, method, role, response.status_code)


def test_a_role_without_the_permission_gets_no_button_for_it(world):
    clients = {role: client_for(role) for role in ("Support", "Finance", "Owner")}
    pages = {
        role: client.get(f"/mgmt/orders/{world['number']}/").content.decode()
        for role, client in clients.items()
    }
    assert "Refund…" not in pages["Support"] and "Refund…" in pages["Finance"]
    assert "Resend keys…" in pages["Support"]
    assert "Show key" not in pages["Support"] and "Show key" in pages["Finance"]
    assert "Suspend…" not in pages["Support"] and "Suspend…" in pages["Finance"]
    notifications = clients["Finance"].get("/mgmt/notifications/").content.decode()
    assert "Disable…" not in notifications
    assert "Disable…" in clients["Owner"].get("/mgmt/notifications/").content.decode()
    export = 'href="/mgmt/orders/export.csv'
    assert export not in clients["Support"].get("/mgmt/orders/").content.decode()
    assert export in clients["Finance"].get("/mgmt/orders/").content.decode()
