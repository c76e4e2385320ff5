import json

import pytest
from django.core.cache import cache

from licenses.keys import hash_key
from licenses.models import License
from orders.webhooks import handle_stripe_event
from testkit.stripe_objects import make_event, session_obj
from tests.factories import make_order, make_product

pytestmark = pytest.mark.django_db

URL = "/api/licenses/validate"


@pytest.fixture(autouse=True)
def _fresh_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def license():
    order = make_order(product=make_product(slug="tunewright", license_prefix="TW"))
    handle_stripe_event(make_event("checkout.session.completed", session_obj(order)))
    return order.licenses.get()


def validate(client, body, **extra):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(URL, data, content_type="application/json", **extra)


def test_an_active_key_is_valid(client, license):
    response = validate(client, {"key": license.key, "product": "tunewright"})
    assert response.status_code == 200
    answer = response.json()
    assert (answer["valid"], answer["code"]) == (True, "VALID")
    assert answer["expires_at"] is None
    assert answer["activations"] == {"used": 0, "limit": None}
    assert answer["certificate"].count(".") == 2


def test_the_key_may_be_typed_in_lower_case_without_dashes(client, license):
    typed = license.key.replace("-", "").lower()
    assert validate(client, {"key": typed, "product": "tunewright"}).json()["code"] == "VALID"


def test_an_unknown_key_is_not_found(client, license):
    response = validate(
        client, {"key": "TW-AAAAA-BBBBB-CCCCC-DDDDD-EEEEE", "product": "tunewright"}
    )
    assert response.json() == {
        "valid": False,
        "code": "NOT_FOUND",
        "expires_at": None,
        "activations": None,
    }


def test_a_key_of_another_product_is_a_mismatch(client, license):
    make_product(slug="other")
    response = validate(client, {"key": license.key, "product": "other"})
    # No certificate: one naming the key's own product must not reach another product's client.
    assert response.json() == {
        "valid": False,
        "code": "PRODUCT_MISMATCH",
        "expires_at": None,
        "activations": None,
    }


@pytest.mark.parametrize(
    ("status", "code"), [("suspended", "SUSPENDED"), ("revoked", "REVOKED"), ("pending", "PENDING")]
)
def test_a_key_that_is_not_active_says_why(client, license, status, code):
    License.objects.filter(pk=license.pk).update(status=status)
    response = validate(client, {"key": license.key, "product": "tunewright"})
    answer = response.json()
    assert (answer["valid"], answer["code"]) == (False, code)
    assert answer["certificate"]


def test_the_answer_never_carries_customer_data(client, license):
    response = validate(client, {"key": license.key, "product": "tunewright"})
    body = response.content.decode()
    assert license.order.email not in body
    assert license.order.number not in body
    assert license.key not in body
    assert str(license.pk) not in response.json()["activations"].values()
    assert set(response.json()) == {"valid", "code", "expires_at", "activations", "certificate"}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'"key"',
        b"{}",
        b'{"key": "A"}',
        b'{"product": "tunewright"}',
        b'{"key": 5, "product": "tunewright"}',
        b'{"key": "  ", "product": "tunewright"}',
        b'{"key": "A", "product": ["tunewright"]}',
        json.dumps({"key": "A" * 201, "product": "tunewright"}).encode(),
        json.dumps({"key": "A", "product": "x" * 5000}).encode(),
        b"[" * 2000 + b"]" * 2000,
    ],
)
def test_a_malformed_body_is_a_400_with_a_reason(client, body):
    response = validate(client, body)
    assert response.status_code == 400
    assert response.json()["error"]


def test_only_post_is_allowed(client):
    assert client.get(URL).status_code == 405


def test_one_client_is_limited_with_retry_after(client, license, settings):
    settings.LICENSE_VALIDATE_RATE = 3
    body = {"key": "TW-NOPE", "product": "tunewright"}
    answers = [validate(client, {**body, "key": f"TW-{i}"}) for i in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert 1 <= int(answers[-1]["Retry-After"]) <= settings.LICENSE_VALIDATE_WINDOW
    other = validate(client, body, REMOTE_ADDR="10.1.2.3")
    assert other.status_code == 200


def test_one_key_is_limited_per_client_address(client, license, settings):
    settings.LICENSE_VALIDATE_KEY_RATE = 2
    body = {"key": license.key, "product": "tunewright"}
    codes = [validate(client, body, REMOTE_ADDR="10.0.0.1").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    # The limiter counts by the key's hash: the key itself is never a cache key.
    stored = " ".join(str(k) for k in cache._cache)
    assert hash_key(license.key) in stored
    assert license.key not in stored


def test_a_stranger_who_knows_the_key_cannot_lock_its_owner_out(client, license, settings):
    settings.LICENSE_VALIDATE_KEY_RATE = 3
    body = {"key": license.key, "product": "tunewright"}
    stranger = [validate(client, body, REMOTE_ADDR="198.51.100.9") for _ in range(10)]
    assert stranger[-1].status_code == 429
    owner = validate(client, body, REMOTE_ADDR="203.0.113.5")
    assert owner.status_code == 200 and owner.json()["code"] == "VALID"


def test_the_lookup_costs_one_query(client, license, django_assert_num_queries):
    validate(client, {"key": license.key, "product": "tunewright"})  # the signing key, once
    with django_assert_num_queries(1):
        validate(client, {"key": license.key, "product": "tunewright"})


def test_behind_a_proxy_the_limit_counts_the_address_the_proxy_saw(client, settings):
    settings.CLIENT_IP_HEADER = "X-Forwarded-For"
    settings.LICENSE_VALIDATE_RATE = 1
    body = {"key": "TW-NOPE", "product": "tunewright"}
    first = validate(client, body, HTTP_X_FORWARDED_FOR="spoofed, 203.0.113.7")
    other = validate(client, body, HTTP_X_FORWARDED_FOR="203.0.113.8")
    again = validate(client, body, HTTP_X_FORWARDED_FOR="another-spoof, 203.0.113.7")
    assert [first.status_code, other.status_code, again.status_code] == [200, 200, 429]
