"""The activation limit under concurrency: real threads against PostgreSQL's row locks, through
the API as client software calls it (SQLite runs one write transaction at a time)."""

import json
import threading
from collections import Counter

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client

from licenses.activations import activate
from licenses.models import Activation
from orders.webhooks import handle_stripe_event
from testkit.stripe_objects import make_event, refunded_in_full, session_obj
from tests.factories import make_order, make_product

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: SQLite runs one write transaction at a time, so nothing races",
    ),
]


@pytest.fixture(autouse=True)
def _no_request_limits(settings):
    settings.LICENSE_VALIDATE_RATE = settings.LICENSE_VALIDATE_KEY_RATE = 10_000
    cache.clear()


@pytest.fixture
def license():
    order = make_order(product=make_product(slug="tunewright", max_activations=3))
    handle_stripe_event(make_event("checkout.session.completed", session_obj(order)))
    return order.licenses.get()


def run_together(calls) -> list:
    """Each call in its own thread, all released at once; each call's result or exception."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(n, call):
        try:
            connection.ensure_connection()
            barrier.wait(timeout=30)
            results[n] = call()
        except Exception as error:
            results[n] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n, c)) for n, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def post_activate(license, fingerprint):
    body = {"key": license.key, "product": "tunewright", "fingerprint": fingerprint}
    response = Client().post(
        "/api/licenses/activate", json.dumps(body), content_type="application/json"
    )
    return response.status_code, response.json()


def test_32_devices_activating_at_once_leave_exactly_the_limit(license):
    results = run_together([lambda n=n: post_activate(license, f"device-{n}") for n in range(32)])
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 3, 409: 29}, results
    assert Activation.objects.filter(license=license, deactivated_at=None).count() == 3
    refused = {body["code"] for status, body in results if status == 409}
    assert refused == {"TOO_MANY_ACTIVATIONS"}


def test_one_device_activating_16_times_at_once_is_one_activation(license):
    results = run_together([lambda: post_activate(license, "same-device") for _ in range(16)])
    assert Counter(status for status, _ in results) == {201: 1, 200: 15}, results
    assert len({body["activation_id"] for _, body in results}) == 1
    assert Activation.objects.filter(license=license).count() == 1


def test_activations_racing_a_refund_leave_no_device_on_the_revoked_license(license):
    order = license.order
    refund = refunded_in_full(order)
    calls = [lambda n=n: activate(license, fingerprint=f"d{n}") for n in range(8)]
    run_together([*calls, lambda: handle_stripe_event(refund)])
    license.refresh_from_db()
    assert license.status == "revoked"
    assert not Activation.objects.filter(license=license, deactivated_at=None).exists()


def test_deactivations_racing_the_churn_limit_stop_at_it(license, settings):
    settings.LICENSE_DEACTIVATIONS_PER_30_DAYS = 2
    ids = [post_activate(license, f"d{n}")[1]["activation_id"] for n in range(3)]

    def post_deactivate(activation_id):
        body = {"key": license.key, "activation_id": activation_id}
        return (
            Client()
            .post("/api/licenses/deactivate", json.dumps(body), content_type="application/json")
            .status_code
        )

    results = run_together([lambda a=a: post_deactivate(a) for a in ids])
    assert sorted(results) == [200, 200, 429]
    assert Activation.objects.filter(license=license, deactivated_at=None).count() == 1
