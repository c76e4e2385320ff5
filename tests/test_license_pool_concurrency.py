import threading
import time

import pytest
from django.db import connection, transaction

from licenses.lifecycle import revoke_all
from licenses.models import License, PoolKey
from licenses.pool import import_keys
from orders.models import LicenseKind
from orders.stripe_events import locate_order
from orders.webhooks import handle_stripe_event
from testkit.stripe_objects import make_event, session_obj
from tests.factories import make_order, make_product

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="row locks need PostgreSQL (DATABASE_URL)"
    ),
]


def run_at_once(functions):
    barrier = threading.Barrier(len(functions))
    errors = []

    def run(function):
        try:
            barrier.wait()
            function()
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(f,)) for f in functions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


def test_twenty_orders_completing_at_once_share_ten_keys_and_imports_fill_the_rest_oldest_first():
    product = make_product(license_kind=LicenseKind.POOL, stock_alert_threshold=0)
    import_keys(product, [f"VENDOR-{i:02}" for i in range(10)])
    orders = [make_order(product=product) for _ in range(20)]
    events = [make_event("checkout.session.completed", session_obj(o)) for o in orders]

    run_at_once([lambda e=e: handle_stripe_event(e) for e in events])

    licenses = License.objects.filter(product=product)
    assert licenses.count() == 20
    assert licenses.filter(status="active").count() == 10
    assert licenses.filter(status="pending").count() == 10
    keys = list(licenses.exclude(key="").values_list("key", flat=True))
    assert len(keys) == len(set(keys)) == 10
    assert PoolKey.objects.filter(claimed_at=None).count() == 0

    waiting = list(licenses.filter(status="pending").order_by("created_at", "id"))
    assert import_keys(product, [f"LATE-{i:02}" for i in range(10)]) == (10, 0)
    for license, expected in zip(waiting, [f"LATE-{i:02}" for i in range(10)], strict=True):
        license.refresh_from_db()
        assert (license.status, license.key) == ("active", expected)


def test_a_key_import_and_a_webhook_for_the_same_order_never_deadlock():
    product = make_product(license_kind=LicenseKind.POOL, stock_alert_threshold=0)
    order = make_order(product=product)
    handle_stripe_event(make_event("checkout.session.completed", session_obj(order)))
    assert License.objects.get(order=order).status == "pending"
    locked = threading.Event()

    def webhook_holding_the_order():
        with transaction.atomic():
            held = locate_order(session_obj(order))  # the order's lock, as the webhook takes it
            locked.set()
            time.sleep(1.0)  # the import meanwhile locks the waiting license
            revoke_all(held, reason="refund")  # what a refund's transition does to licenses

    def import_while_the_order_is_held():
        locked.wait(10)
        time.sleep(0.2)
        import_keys(product, ["VENDOR-KEY-1"])  # fills the license, queues its key email

    run_at_once([webhook_holding_the_order, import_while_the_order_is_held])
    assert License.objects.get(order=order).status == "revoked"
