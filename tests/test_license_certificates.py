"""Offline verification (DESIGN, Licenses): certificates as compact JWS signed with Ed25519, the
JWK Set, signing keys created on first need and rotated by commands, and the README's example."""

import base64
import hashlib
import importlib.util
import io
import json
import threading
import time
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection

from licenses import certificates
from licenses.models import SigningKey
from orders.webhooks import handle_stripe_event
from testkit.stripe_objects import make_event, session_obj
from tests.factories import make_order, make_product

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "verify_certificate.py"
PRODUCT = "tunewright"


def _load_example():
    spec = importlib.util.spec_from_file_location("verify_certificate", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = _load_example()
verify, Invalid = example.verify_certificate, example.InvalidCertificate


@pytest.fixture(autouse=True)
def _fresh_limits():
    cache.clear()


@pytest.fixture
def license():
    order = make_order(product=make_product(slug=PRODUCT, max_activations=2, license_days=30))
    handle_stripe_event(make_event("checkout.session.completed", session_obj(order)))
    return order.licenses.get()


def post(client, path, body):
    return client.post(f"/api/licenses/{path}", json.dumps(body), content_type="application/json")


def certificate_of(client, license, fingerprint=None) -> str:
    body = {"key": license.key, "product": PRODUCT}
    if fingerprint:
        body["fingerprint"] = fingerprint
    return post(client, "validate", body).json()["certificate"]


def key_set(client) -> dict:
    response = client.get("/api/licenses/public-key")
    assert response.status_code == 200
    return response.json()


def decode(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_the_readme_shows_exactly_the_example_the_tests_run():
    readme = (ROOT / "README.md").read_text()
    assert EXAMPLE.read_text() in readme


def test_the_example_verifies_a_validate_certificate(client, license):
    token = certificate_of(client, license)
    claims = verify(token, key_set(client), product=PRODUCT)
    assert claims["sub"] == str(license.public_id)
    assert claims["product"] == PRODUCT and claims["status"] == "active"
    assert claims["license_exp"] == int(license.expires_at.timestamp())
    assert "fingerprint_sha256" not in claims


def test_an_activation_certificate_is_bound_to_its_device(client, license):
    body = {"key": license.key, "product": PRODUCT, "fingerprint": "fp-1", "label": "pc"}
    token = post(client, "activate", body).json()["certificate"]
    keys = key_set(client)
    claims = verify(token, keys, product=PRODUCT, fingerprint="fp-1")
    assert claims["fingerprint_sha256"] == hashlib.sha256(b"fp-1").hexdigest()
    with pytest.raises(Invalid, match="not activated on this device"):
        verify(token, keys, product=PRODUCT, fingerprint="fp-2")
    validated = certificate_of(client, license, "fp-1")
    assert verify(validated, keys, product=PRODUCT, fingerprint="fp-1")
    not_activated = certificate_of(client, license, "fp-2")
    with pytest.raises(Invalid, match="not activated"):
        verify(not_activated, keys, product=PRODUCT, fingerprint="fp-2")


def test_the_header_names_the_algorithm_and_the_key(client, license):
    header, payload, signature = certificate_of(client, license).split(".")
    kid = SigningKey.objects.get(current=True).kid
    assert decode(header) == {"alg": "EdDSA", "kid": kid, "typ": "JWT"}
    claims = decode(payload)
    assert claims["exp"] - claims["iat"] == 7 * 24 * 3600
    assert len(base64.urlsafe_b64decode(signature + "==")) == 64


def test_the_time_to_live_is_a_setting_and_exp_is_honoured(client, license, settings):
    settings.LICENSE_CERTIFICATE_TTL = 600
    token = certificate_of(client, license)
    claims = decode(token.split(".")[1])
    assert claims["exp"] - claims["iat"] == 600
    keys = key_set(client)
    assert verify(token, keys, product=PRODUCT, now=claims["exp"] - 1)
    with pytest.raises(Invalid, match="certificate expired"):
        verify(token, keys, product=PRODUCT, now=claims["exp"])


def test_a_tampered_certificate_fails(client, license):
    header, payload, signature = certificate_of(client, license).split(".")
    keys = key_set(client)
    claims = decode(payload)
    claims["license_exp"] = None  # a lifetime license, please
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(Invalid, match="not signed by the shop"):
        verify(f"{header}.{forged}.{signature}", keys, product=PRODUCT)
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    with pytest.raises(Invalid, match="not signed by the shop"):
        verify(f"{header}.{payload}.{flipped}", keys, product=PRODUCT)
    for garbage in ("", "a.b", "a.b.c", f"{header}.{payload}"):
        with pytest.raises(Invalid):
            verify(garbage, keys, product=PRODUCT)


def test_a_certificate_for_a_revoked_or_expired_license_says_so(client, license):
    from licenses.models import License

    License.objects.filter(pk=license.pk).update(status="revoked")
    with pytest.raises(Invalid, match="license is revoked"):
        verify(certificate_of(client, license), key_set(client), product=PRODUCT)


def test_a_certificate_is_checked_against_the_product(client, license):
    with pytest.raises(Invalid, match="another product"):
        verify(certificate_of(client, license), key_set(client), product="other")


def test_the_key_set_is_a_jwk_set_of_ed25519_keys(client, license):
    keys = key_set(client)["keys"]
    assert len(keys) == 1
    (key,) = keys
    assert {k: v for k, v in key.items() if k != "x"} == {
        "kty": "OKP",
        "crv": "Ed25519",
        "kid": SigningKey.objects.get().kid,
        "use": "sig",
        "alg": "EdDSA",
    }
    assert len(base64.urlsafe_b64decode(key["x"] + "=")) == 32


def test_a_fresh_install_makes_its_key_on_the_first_request_and_only_one(client, license):
    assert not SigningKey.objects.exists()
    certificate_of(client, license)
    certificates.forget_signer()  # as another process would
    key_set(client)
    certificate_of(client, license)
    assert SigningKey.objects.count() == 1


def test_rotation_keeps_the_old_key_published_until_its_certificates_expired(
    client, license, settings
):
    settings.LICENSE_CERTIFICATE_TTL = 3600
    old = certificate_of(client, license)
    old_kid = decode(old.split(".")[0])["kid"]
    out = io.StringIO()
    call_command("rotate_signing_key", stdout=out)
    new = certificate_of(client, license)
    assert decode(new.split(".")[0])["kid"] != old_kid
    keys = key_set(client)
    assert {key["kid"] for key in keys["keys"]} >= {old_kid}
    assert verify(old, keys, product=PRODUCT) and verify(new, keys, product=PRODUCT)
    retired = SigningKey.objects.get(kid=old_kid)
    assert bytes(retired.private_key) == b""  # nothing signs with it again

    later = time.time() + 3600 + certificates.REFRESH_SECONDS + 1
    import time_machine

    with time_machine.travel(later):
        keys = key_set(client)
    assert [key["kid"] for key in keys["keys"]] == [decode(new.split(".")[0])["kid"]]
    issued_at = decode(old.split(".")[1])["iat"]
    with pytest.raises(Invalid, match="not signed by the shop"):
        verify(old, keys, product=PRODUCT, now=issued_at + 1)


def test_the_commands_print_the_kid_and_never_the_private_key(license):
    out = io.StringIO()
    call_command("create_signing_key", stdout=out)
    call_command("create_signing_key", stdout=out)
    call_command("rotate_signing_key", stdout=out)
    text = out.getvalue()
    assert "created" in text and "already exists" in text and "Retired" in text
    assert SigningKey.objects.filter(current=True).count() == 1
    current = SigningKey.objects.get(current=True)
    signer = certificates.current_signer()
    raw = signer.private_key.private_bytes_raw()
    for shown in (raw.hex(), certificates.b64url(raw), bytes(current.private_key).hex()):
        assert shown not in text


def test_the_private_key_is_stored_sealed_and_shown_nowhere(client, license, staff):
    certificate_of(client, license)
    key = SigningKey.objects.get()
    raw = certificates.current_signer().private_key.private_bytes_raw()
    assert raw not in bytes(key.private_key)
    client.force_login(staff)
    assert client.get("/admin/licenses/signingkey/").status_code == 404
    body = client.get("/api/licenses/public-key").content.decode()
    assert certificates.b64url(raw) not in body


def test_a_key_sealed_under_another_secret_is_refused_in_words_and_rotation_recovers(
    client, license, settings
):
    certificate_of(client, license)
    certificates.forget_signer()
    settings.LICENSE_HASH_KEY = "a-new-secret"
    with pytest.raises(certificates.SigningKeyUnreadable) as raised:
        certificates.current_signer()
    assert "rotate_signing_key" in str(raised.value)
    call_command("rotate_signing_key", stdout=io.StringIO())
    assert certificates.current_signer().kid == SigningKey.objects.get(current=True).kid


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL's row locks")
def test_processes_racing_to_make_the_first_key_make_one():
    barrier, kids, errors = threading.Barrier(8), [], []

    def first_request():
        try:
            barrier.wait(timeout=30)
            kids.append(certificates.create_signing_key()[0].kid)
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=first_request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert SigningKey.objects.count() == 1
    assert set(kids) == {SigningKey.objects.get().kid}
