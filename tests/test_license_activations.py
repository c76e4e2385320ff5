"""Activations and expiry (DESIGN, Licenses): the product's terms copied onto each license, the
activation limit, deactivation and its churn limit, and what refunds and disputes do to devices."""

from datetime import timedelta

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from licenses.activations import (
    ActivationRefused,
    activate,
    deactivate,
    deactivation_refusal,
    reset_activations,
)
from licenses.keys import hash_fingerprint, hash_key
from licenses.models import Activation, License
from licenses.signals import activation_limit_reached
from orders.webhooks import handle_stripe_event
from testkit.stripe_objects import (
    dispute_obj,
    make_event,
    refunded_in_full,
    session_obj,
)
from tests.factories import make_order, make_product

pytestmark = pytest.mark.django_db


def issue(quantity: int = 1, **terms) -> list[License]:
    order = make_order(product=make_product(**terms), quantity=quantity)
    handle_stripe_event(make_event("checkout.session.completed", session_obj(order)))
    return list(order.licenses.order_by("id"))


@pytest.fixture
def limited():
    return issue(max_activations=2)[0]


@pytest.fixture
def told():
    calls = []

    def record(sender, license, activation, **kwargs):
        calls.append((license.pk, activation.pk))

    activation_limit_reached.connect(record, dispatch_uid="test-told")
    yield calls
    activation_limit_reached.disconnect(dispatch_uid="test-told")


def refused(call, *args, **kwargs) -> str:
    with pytest.raises(ActivationRefused) as raised:
        call(*args, **kwargs)
    return raised.value.code


# The product's terms


def test_a_license_copies_the_products_activation_limit_and_expiry_when_issued():
    with time_machine.travel("2027-01-10 12:00Z", tick=False):
        license = issue(max_activations=3, license_days=365)[0]
    assert license.max_activations == 3
    assert license.expires_at.isoformat() == "2028-01-10T12:00:00+00:00"


def test_blank_terms_mean_unlimited_and_never_expiring():
    license = issue()[0]
    assert (license.max_activations, license.expires_at) == (None, None)


def test_editing_the_product_later_changes_no_sold_license():
    license = issue(max_activations=3, license_days=30)[0]
    expires = license.expires_at
    product = license.product
    product.max_activations, product.license_days = 1, None
    product.save()
    license.refresh_from_db()
    assert (license.max_activations, license.expires_at) == (3, expires)


def test_a_product_refuses_a_limit_or_a_duration_of_zero():
    for field in ("max_activations", "license_days"):
        with pytest.raises(IntegrityError), transaction.atomic():
            make_product(**{field: 0})


def test_each_license_has_its_own_opaque_public_id():
    first, second = issue(quantity=2)
    assert first.public_id != second.public_id
    assert str(first.pk) not in str(first.public_id).split("-")


# Activating


def test_a_first_activation_is_created_with_a_hashed_fingerprint(limited):
    done = activate(limited, fingerprint="machine-1", label="Ada's laptop")
    assert (done.created, done.used) == (True, 1)
    row = Activation.objects.get()
    assert row.fingerprint_hash == hash_fingerprint("machine-1")
    assert "machine-1" not in str(Activation.objects.values().get())
    assert (row.label, row.deactivated_at) == ("Ada's laptop", None)


def test_activating_an_active_device_again_gives_the_same_activation(limited):
    first = activate(limited, fingerprint="machine-1", label="old name")
    again = activate(limited, fingerprint="machine-1", label="new name")
    assert (again.created, again.used) == (False, 1)
    assert again.activation.public_id == first.activation.public_id
    assert Activation.objects.get().label == "new name"


def test_the_limit_refuses_one_device_more(limited):
    activate(limited, fingerprint="a")
    activate(limited, fingerprint="b")
    assert refused(activate, limited, fingerprint="c") == "TOO_MANY_ACTIVATIONS"
    assert activate(limited, fingerprint="a").created is False  # a device it has still works
    assert Activation.objects.count() == 2


def test_an_unlimited_license_takes_any_number_of_devices():
    license = issue()[0]
    for n in range(12):
        activate(license, fingerprint=f"device-{n}")
    assert Activation.objects.filter(deactivated_at=None).count() == 12


@pytest.mark.parametrize(
    ("status", "code"), [("suspended", "SUSPENDED"), ("revoked", "REVOKED"), ("pending", "PENDING")]
)
def test_a_license_that_is_not_active_refuses_activation_with_its_code(limited, status, code):
    License.objects.filter(pk=limited.pk).update(status=status)
    assert refused(activate, limited, fingerprint="a") == code
    assert not Activation.objects.exists()


def test_an_expired_license_refuses_activation():
    license = issue(license_days=30)[0]
    with time_machine.travel(timezone.now() + timedelta(days=30, seconds=1)):
        assert refused(activate, license, fingerprint="a") == "EXPIRED"


def test_a_fingerprint_hash_is_never_a_key_hash():
    assert hash_fingerprint("ABCDE") != hash_key("ABCDE")
    assert hash_fingerprint("abcde") != hash_key("abcde")


def test_the_database_refuses_a_second_active_activation_of_one_device(limited):
    activate(limited, fingerprint="a")
    with pytest.raises(IntegrityError), transaction.atomic():
        Activation.objects.create(
            license=limited, fingerprint_hash=hash_fingerprint("a"), last_seen_at=timezone.now()
        )


def test_a_deactivated_device_may_be_activated_again_as_a_new_activation(limited):
    first = activate(limited, fingerprint="a").activation
    deactivate(first)
    again = activate(limited, fingerprint="a")
    assert again.created and again.activation.public_id != first.public_id


# Staff are told when the last activation is used


def test_using_the_last_activation_tells_staff_once_a_day(limited, told):
    activate(limited, fingerprint="a")
    assert told == []
    last = activate(limited, fingerprint="b").activation
    assert told == [(limited.pk, last.pk)]
    deactivate(last)
    again = activate(limited, fingerprint="c").activation  # full again the same day: not news
    assert len(told) == 1
    with time_machine.travel(timezone.now() + timedelta(days=1, minutes=1)):
        deactivate(again)
        activate(limited, fingerprint="d")
    assert len(told) == 2


def test_an_idempotent_activation_at_the_limit_tells_nobody(limited, told):
    activate(limited, fingerprint="a")
    activate(limited, fingerprint="b")
    activate(limited, fingerprint="b")
    assert len(told) == 1


# Deactivating


def test_deactivating_frees_an_activation(limited):
    a = activate(limited, fingerprint="a").activation
    activate(limited, fingerprint="b")
    ended = deactivate(a)
    assert ended.deactivated_at is not None and ended.ended == "client"
    assert activate(limited, fingerprint="c").created


def test_deactivating_twice_changes_nothing_the_second_time(limited):
    a = activate(limited, fingerprint="a").activation
    first = deactivate(a).deactivated_at
    assert deactivate(a).deactivated_at == first


def test_deactivations_are_limited_per_license_per_30_days(limited, settings):
    settings.LICENSE_DEACTIVATIONS_PER_30_DAYS = 3
    start = timezone.now()
    for n in range(3):
        with time_machine.travel(start + timedelta(days=n), tick=False):
            deactivate(activate(limited, fingerprint=f"d{n}").activation)
    with time_machine.travel(start + timedelta(days=10), tick=False):
        fourth = activate(limited, fingerprint="d3").activation
        assert "3 devices in the last 30 days" in deactivation_refusal(fourth)
        with pytest.raises(ActivationRefused) as raised:
            deactivate(fourth)
    assert raised.value.code == "TOO_MANY_DEACTIVATIONS"
    assert raised.value.retry_after == 20 * 86400  # when the first one leaves the 30 days
    assert Activation.objects.get(pk=fourth.pk).deactivated_at is None
    with time_machine.travel(start + timedelta(days=30, seconds=1), tick=False):
        assert deactivation_refusal(fourth) == ""
        deactivate(fourth)


def test_the_limit_is_per_license(settings):
    settings.LICENSE_DEACTIVATIONS_PER_30_DAYS = 1
    first, second = issue(quantity=2)
    deactivate(activate(first, fingerprint="a").activation)
    deactivate(activate(second, fingerprint="a").activation)
    assert refused(deactivate, activate(first, fingerprint="b").activation) == (
        "TOO_MANY_DEACTIVATIONS"
    )


def test_staff_deactivations_and_resets_are_not_churn(limited, settings, staff):
    settings.LICENSE_DEACTIVATIONS_PER_30_DAYS = 1
    deactivate(activate(limited, fingerprint="a").activation, by=staff)
    activate(limited, fingerprint="b")
    activate(limited, fingerprint="c")
    assert reset_activations(limited, by=staff) == 2
    assert set(Activation.objects.values_list("ended", flat=True)) == {"staff"}
    deactivate(activate(limited, fingerprint="d").activation)  # the customer's one is still free


def test_a_customer_deactivation_counts_and_is_recorded_as_theirs(limited, settings):
    settings.LICENSE_DEACTIVATIONS_PER_30_DAYS = 1
    customer = User.objects.create_user("buyer@example.com")
    ended = deactivate(activate(limited, fingerprint="a").activation, by=customer)
    assert (ended.ended, ended.ended_by) == ("customer", customer)
    assert refused(deactivate, activate(limited, fingerprint="b").activation) == (
        "TOO_MANY_DEACTIVATIONS"
    )


def test_reset_activations_frees_the_whole_limit(limited, staff):
    activate(limited, fingerprint="a")
    activate(limited, fingerprint="b")
    reset_activations(limited, by=staff)
    assert activate(limited, fingerprint="c").used == 1


# Refunds and disputes


def test_a_refund_ends_the_licenses_activations_in_its_transaction(limited):
    activate(limited, fingerprint="a")
    order = limited.order
    handle_stripe_event(refunded_in_full(order))
    limited.refresh_from_db()
    assert limited.status == "revoked"
    row = Activation.objects.get()
    assert row.deactivated_at is not None and row.ended == "revoked"
    assert refused(activate, limited, fingerprint="a") == "REVOKED"


def test_a_lost_chargeback_ends_the_activations_too(limited):
    activate(limited, fingerprint="a")
    order = limited.order
    handle_stripe_event(make_event("charge.dispute.created", dispute_obj(order, "dp_1")))
    handle_stripe_event(make_event("charge.dispute.closed", dispute_obj(order, "dp_1", "lost")))
    limited.refresh_from_db()
    assert limited.status == "revoked"
    assert Activation.objects.get().ended == "revoked"


def test_a_dispute_keeps_the_activations_and_a_won_one_gives_the_license_back(limited):
    activate(limited, fingerprint="a")
    order = limited.order
    handle_stripe_event(make_event("charge.dispute.created", dispute_obj(order, "dp_1")))
    limited.refresh_from_db()
    assert limited.status == "suspended"
    assert Activation.objects.get().deactivated_at is None
    assert refused(activate, limited, fingerprint="b") == "SUSPENDED"
    handle_stripe_event(make_event("charge.dispute.closed", dispute_obj(order, "dp_1", "won")))
    assert activate(limited, fingerprint="a").created is False


def test_a_revocation_leaves_other_orders_devices_alone(limited):
    other = issue()[0]
    activate(other, fingerprint="a")
    activate(limited, fingerprint="a")
    order = limited.order
    handle_stripe_event(refunded_in_full(order))
    assert Activation.objects.get(license=other).deactivated_at is None
