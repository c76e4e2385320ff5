"""POST /api/licenses/activate and /deactivate, and validate with a fingerprint (DESIGN,
Licenses: Activations and expiry), through HTTP as client software calls them."""

import json
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.utils import timezone

from licenses.models import Activation, License
from orders.webhooks import handle_stripe_event
from testkit.stripe_objects import make_event, refunded_in_full, session_obj
from tests.factories import make_order, make_product

pytestmark = pytest.mark.django_db

PRODUCT = "tunewright"


@pytest.fixture(autouse=True)
def _fresh_limits():
    cache.clear()
    yield
    cache.clear()


def issue(*, slug=PRODUCT, quantity=1, **terms) -> list[License]:
    order = make_order(product=make_product(slug=slug, **terms), quantity=quantity)
    handle_stripe_event(make_event("checkout.session.completed", session_obj(order)))
    return list(order.licenses.order_by("id"))


@pytest.fixture
def license():
    return issue(max_activations=2, license_days=365)[0]


def post(client, path, body, **extra):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(f"/api/licenses/{path}", data, content_type="application/json", **extra)


def activate(client, license, fingerprint, label="", **extra):
    body = {"key": license.key, "product": PRODUCT, "fingerprint": fingerprint, "label": label}
    return post(client, "activate", body, **extra)


def validate(client, license, fingerprint=None, product=PRODUCT):
    body = {"key": license.key, "product": product}
    if fingerprint is not None:
        body["fingerprint"] = fingerprint
    return post(client, "validate", body)


def deactivate(client, key, activation_id, **extra):
    return post(client, "deactivate", {"key": key, "activation_id": activation_id}, **extra)


# activate


def test_activating_a_new_device_answers_201_with_its_activation(client, license):
    response = activate(client, license, "fp-1", "Ada's laptop")
    assert response.status_code == 201
    answer = response.json()
    assert (answer["activated"], answer["code"]) == (True, "ACTIVATED")
    assert answer["activation_id"] == str(Activation.objects.get().public_id)
    assert answer["activations"] == {"used": 1, "limit": 2}
    assert answer["expires_at"] == license.expires_at.isoformat()
    assert answer["certificate"]


def test_activating_the_same_device_again_answers_200_with_the_same_id(client, license):
    first = activate(client, license, "fp-1").json()["activation_id"]
    again = activate(client, license, "fp-1")
    assert again.status_code == 200
    assert again.json()["activation_id"] == first
    assert again.json()["activations"] == {"used": 1, "limit": 2}


def test_a_full_license_answers_409_too_many_activations(client, license):
    activate(client, license, "fp-1")
    activate(client, license, "fp-2")
    response = activate(client, license, "fp-3")
    assert response.status_code == 409
    answer = response.json()
    assert (answer["activated"], answer["code"]) == (False, "TOO_MANY_ACTIVATIONS")
    assert answer["activations"] == {"used": 2, "limit": 2}
    assert Activation.objects.count() == 2


def test_an_unknown_key_is_a_404_and_another_products_key_a_403(client, license):
    unknown = post(
        client,
        "activate",
        {"key": "TW-AAAAA-BBBBB", "product": PRODUCT, "fingerprint": "fp"},
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "NOT_FOUND")
    make_product(slug="other")
    body = {"key": license.key, "product": "other", "fingerprint": "fp"}
    mismatch = post(client, "activate", body)
    assert (mismatch.status_code, mismatch.json()["code"]) == (403, "PRODUCT_MISMATCH")
    assert "certificate" not in mismatch.json()
    assert not Activation.objects.exists()


@pytest.mark.parametrize(
    ("status", "code"), [("suspended", "SUSPENDED"), ("revoked", "REVOKED"), ("pending", "PENDING")]
)
def test_a_license_that_is_not_active_refuses_activation_with_403(client, license, status, code):
    License.objects.filter(pk=license.pk).update(status=status)
    response = activate(client, license, "fp-1")
    assert (response.status_code, response.json()["code"]) == (403, code)
    assert response.json()["certificate"]
    assert not Activation.objects.exists()


def test_an_expired_license_refuses_activation(client, license):
    with time_machine.travel(license.expires_at + timedelta(seconds=1)):
        response = activate(client, license, "fp-1")
    assert (response.status_code, response.json()["code"]) == (403, "EXPIRED")


def test_a_label_is_kept_printable_and_shortened_not_refused(client, license):
    response = activate(client, license, "fp-1", "evil\x00name\n" + "x" * 500)
    assert response.status_code == 201
    label = Activation.objects.get().label
    assert label.startswith("evilname") and len(label) == 100


@pytest.mark.parametrize(
    "body",
    [
        {"key": "A", "product": PRODUCT},
        {"key": "A", "product": PRODUCT, "fingerprint": ""},
        {"key": "A", "product": PRODUCT, "fingerprint": "   "},
        {"key": "A", "product": PRODUCT, "fingerprint": 5},
        {"key": "A", "product": PRODUCT, "fingerprint": "f" * 256},
        {"key": "A", "product": PRODUCT, "fingerprint": "f", "label": ["x"]},
        {"key": "A", "fingerprint": "f"},
        [],
    ],
)
def test_a_malformed_activation_is_a_400(client, body):
    response = post(client, "activate", body)
    assert response.status_code == 400 and response.json()["error"]


def test_the_answers_never_carry_customer_data_or_the_fingerprint(client, license):
    bodies = [
        activate(client, license, "fp-secret").content.decode(),
        validate(client, license, "fp-secret").content.decode(),
    ]
    for body in bodies:
        for secret in (license.key, license.order.email, license.order.number, "fp-secret"):
            assert secret not in body
        assert Activation.objects.get().fingerprint_hash not in body


# deactivate


def test_deactivating_frees_the_device_and_says_how_many_are_used(client, license):
    activation_id = activate(client, license, "fp-1").json()["activation_id"]
    response = deactivate(client, license.key, activation_id)
    assert response.status_code == 200
    answer = response.json()
    assert (answer["deactivated"], answer["code"]) == (True, "DEACTIVATED")
    assert answer["activations"] == {"used": 0, "limit": 2}
    assert Activation.objects.get().deactivated_at is not None
    assert validate(client, license, "fp-1").json()["code"] == "NOT_ACTIVATED"


def test_deactivating_twice_is_harmless(client, license):
    activation_id = activate(client, license, "fp-1").json()["activation_id"]
    deactivate(client, license.key, activation_id)
    again = deactivate(client, license.key, activation_id)
    assert (again.status_code, again.json()["code"]) == (200, "DEACTIVATED")


def test_a_key_cannot_deactivate_another_licenses_activation(client, license):
    other = issue(slug="other-product")[0]
    body = {"key": other.key, "product": "other-product", "fingerprint": "fp-1"}
    theirs = post(client, "activate", body).json()["activation_id"]
    response = deactivate(client, license.key, theirs)
    assert (response.status_code, response.json()["code"]) == (404, "NOT_FOUND")
    assert Activation.objects.get(public_id=theirs).deactivated_at is None
    unknown = deactivate(client, license.key, str(uuid.uuid4()))
    assert unknown.status_code == 404
    assert deactivate(client, "TW-NOPE", theirs).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"key": "A"},
        {"key": "A", "activation_id": "not-a-uuid"},
        {"activation_id": str(uuid.uuid4())},
    ],
)
def test_a_malformed_deactivation_is_a_400(client, body):
    assert post(client, "deactivate", body).status_code == 400


def test_churning_devices_hits_the_deactivation_limit_with_a_clear_code(client, license, settings):
    settings.LICENSE_DEACTIVATIONS_PER_30_DAYS = 2
    for n in range(2):
        activation_id = activate(client, license, f"fp-{n}").json()["activation_id"]
        assert deactivate(client, license.key, activation_id).status_code == 200
    activation_id = activate(client, license, "fp-9").json()["activation_id"]
    response = deactivate(client, license.key, activation_id)
    assert response.status_code == 429
    assert response.json()["code"] == "TOO_MANY_DEACTIVATIONS"
    assert "30 days" in response.json()["message"]
    assert 29 * 86400 < int(response["Retry-After"]) <= 30 * 86400


# validate with a fingerprint, and the order of the checks


def test_validate_with_an_active_fingerprint_is_valid_and_names_the_activation(client, license):
    activation_id = activate(client, license, "fp-1").json()["activation_id"]
    answer = validate(client, license, "fp-1").json()
    assert (answer["valid"], answer["code"]) == (True, "VALID")
    assert answer["activation_id"] == activation_id
    assert answer["activations"] == {"used": 1, "limit": 2}


def test_validate_with_an_unknown_fingerprint_is_not_activated(client, license):
    activate(client, license, "fp-1")
    answer = validate(client, license, "fp-2").json()
    assert (answer["valid"], answer["code"], answer["activation_id"]) == (
        False,
        "NOT_ACTIVATED",
        None,
    )


def test_validate_without_a_fingerprint_ignores_activations(client, license):
    assert validate(client, license).json()["code"] == "VALID"


def test_an_expired_license_is_expired_for_every_caller(client, license):
    activate(client, license, "fp-1")
    with time_machine.travel(license.expires_at + timedelta(seconds=1)):
        for fingerprint in (None, "fp-1", "fp-2"):
            answer = validate(client, license, fingerprint).json()
            assert (answer["valid"], answer["code"]) == (False, "EXPIRED")


@pytest.mark.parametrize(
    ("status", "code"), [("suspended", "SUSPENDED"), ("revoked", "REVOKED"), ("pending", "PENDING")]
)
def test_the_licenses_state_comes_before_expiry_and_activation(client, license, status, code):
    License.objects.filter(pk=license.pk).update(status=status)
    with time_machine.travel(license.expires_at + timedelta(days=1)):
        assert validate(client, license, "never-activated").json()["code"] == code


def test_a_wrong_product_comes_before_the_licenses_state(client, license):
    make_product(slug="other")
    License.objects.filter(pk=license.pk).update(status="revoked")
    assert validate(client, license, "fp", product="other").json()["code"] == "PRODUCT_MISMATCH"


def test_a_suspended_license_keeps_its_devices_but_answers_suspended(client, license):
    activate(client, license, "fp-1")
    License.objects.filter(pk=license.pk).update(status="suspended")
    assert validate(client, license, "fp-1").json()["code"] == "SUSPENDED"
    License.objects.filter(pk=license.pk).update(status="active")
    assert validate(client, license, "fp-1").json()["code"] == "VALID"


def test_a_refund_ends_the_devices(client, license):
    activate(client, license, "fp-1")
    order = license.order
    handle_stripe_event(refunded_in_full(order))
    answer = validate(client, license, "fp-1").json()
    assert answer["code"] == "REVOKED"
    assert answer["activations"] == {"used": 0, "limit": 2}


def test_validate_moves_last_seen_at_most_once_an_hour(client, license):
    activate(client, license, "fp-1")
    start = timezone.now()
    with time_machine.travel(start + timedelta(minutes=30)):
        validate(client, license, "fp-1")
    assert Activation.objects.get().last_seen_at < start + timedelta(minutes=1)
    with time_machine.travel(start + timedelta(minutes=61), tick=False):
        validate(client, license, "fp-1")
    assert Activation.objects.get().last_seen_at == start + timedelta(minutes=61)


def test_validate_with_a_fingerprint_costs_one_query(client, license, django_assert_num_queries):
    activate(client, license, "fp-1")
    with django_assert_num_queries(1):
        assert validate(client, license, "fp-1").json()["code"] == "VALID"
    with django_assert_num_queries(1):
        assert validate(client, license, "fp-2").json()["code"] == "NOT_ACTIVATED"


def test_activate_costs_three_statements_under_the_lock(client, django_assert_num_queries):
    (license,) = issue(slug="unlimited")
    body = {"key": license.key, "product": "unlimited", "fingerprint": "fp-0"}
    post(client, "activate", body)  # the signing key, once
    # Lock and read the license, count its devices, insert (SAVEPOINT and RELEASE in a test,
    # BEGIN and COMMIT outside one).
    with django_assert_num_queries(5):
        assert post(client, "activate", {**body, "fingerprint": "fp-1"}).status_code == 201
    with django_assert_num_queries(6):  # the same device: its last-seen moves, and it is read
        assert post(client, "activate", {**body, "fingerprint": "fp-1"}).status_code == 200


# rate limits


def test_activate_and_deactivate_count_against_the_same_limits(client, license, settings):
    settings.LICENSE_VALIDATE_RATE = 3
    activation_id = activate(client, license, "fp-1").json()["activation_id"]
    validate(client, license)
    deactivate(client, license.key, activation_id)
    response = activate(client, license, "fp-2")
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert Activation.objects.filter(deactivated_at=None).count() == 0


def test_a_stranger_cannot_use_up_the_owners_activation_limit_of_requests(
    client, license, settings
):
    settings.LICENSE_VALIDATE_KEY_RATE = 2
    for n in range(5):
        activate(client, license, f"stranger-{n}", REMOTE_ADDR="198.51.100.9")
    response = activate(client, license, "owner", REMOTE_ADDR="203.0.113.5")
    assert response.status_code in (201, 409)  # answered, not 429
    assert response.json()["code"] in ("ACTIVATED", "TOO_MANY_ACTIVATIONS")


def test_only_post_is_allowed(client):
    assert client.get("/api/licenses/activate").status_code == 405
    assert client.get("/api/licenses/deactivate").status_code == 405
