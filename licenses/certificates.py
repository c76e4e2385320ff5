"""License certificates: what a client may trust offline until it can ask again.

A certificate is a compact JWS (RFC 7515) signed with Ed25519 (`alg: EdDSA`, RFC 8037), with the
signing key's `kid` (its RFC 7638 thumbprint) in the header; `GET /api/licenses/public-key`
publishes the public keys as a JWK Set.

**Where the private key lives: in the database, encrypted.** `SigningKey.private_key` holds it
sealed with AES-256-GCM under a key derived from LICENSE_HASH_KEY (or SECRET_KEY), which lives in
the environment. Why there:
- a fresh install works with no extra step: the first request that needs a key creates one, and
  only a store every web process and host shares can make that one key (the unique constraint
  `signing_key_one_current` lets exactly one creation win);
- `manage.py rotate_signing_key` reaches every web server at once, with no redeploy of an
  environment variable, and the old public key stays published until its certificates expired;
- the database already holds the license keys, but a copy of it alone (a backup, a read-only SQL
  injection) does not sign certificates: it also takes the secret from the environment. A retired
  key's private half is erased at rotation, as nothing signs with it again.
The private key is never logged, shown in the admin (SigningKey is not registered) or put in an
error message.
"""

import base64
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from .keys import derived_key
from .models import SigningKey

# A process keeps the current key this long before looking again, so a rotation reaches every
# process within it; retired keys stay published this much longer than the certificate TTL.
REFRESH_SECONDS = 60


class SigningKeyUnreadable(RuntimeError):
    """The current key was sealed under another LICENSE_HASH_KEY/SECRET_KEY."""


@dataclass(frozen=True)
class Signer:
    kid: str
    private_key: Ed25519PrivateKey
    header: str  # the encoded JWS header, the same for every certificate of this key
    loaded_at: float


_signer: Signer | None = None
_lock = threading.Lock()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _cipher() -> AESGCM:
    return AESGCM(derived_key("signing-key-encryption"))


def _thumbprint(x: str) -> str:
    """RFC 7638: SHA-256 of the JWK's required members, in lexicographic order, no spaces."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode()).digest())


@sensitive_variables("private", "sealed")
def _new_key() -> SigningKey:
    private = Ed25519PrivateKey.generate()
    x = b64url(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    kid = _thumbprint(x)
    nonce = os.urandom(12)
    sealed = nonce + _cipher().encrypt(nonce, private.private_bytes_raw(), kid.encode())
    return SigningKey(kid=kid, public_key=x, private_key=sealed, current=True)


def create_signing_key() -> tuple[SigningKey, bool]:
    """The current signing key, created if there is none; (key, created). Two processes that
    both find none both try, and the unique constraint lets only one succeed."""
    existing = SigningKey.objects.filter(current=True).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            key = _new_key()
            key.save()
            return key, True
    except IntegrityError:  # another process created it first: use theirs
        return SigningKey.objects.get(current=True), False


@transaction.atomic
def rotate_signing_key() -> tuple[SigningKey, SigningKey | None]:
    """Retire the current key (erasing its private half) and make a new one current; (new,
    retired). Its public key stays in the set until the last certificate it signed expired."""
    queryset = SigningKey.objects.filter(current=True)
    if connection.features.has_select_for_update:
        queryset = queryset.select_for_update()
    retired = queryset.first()
    if retired is not None:
        retired.current, retired.retired_at, retired.private_key = None, timezone.now(), b""
        retired.save(update_fields=["current", "retired_at", "private_key"])
    key = _new_key()
    key.save()
    forget_signer()
    return key, retired


def forget_signer() -> None:
    """Read the current key from the database at the next signature (after a rotation here,
    or in tests, whose database is rolled back under the process's cached key)."""
    global _signer
    _signer = None


@sensitive_variables("raw")
def _unsealed(key: SigningKey) -> Signer:
    sealed = bytes(key.private_key)
    try:
        raw = _cipher().decrypt(sealed[:12], sealed[12:], key.kid.encode())
    except (InvalidTag, ValueError) as error:
        raise SigningKeyUnreadable(
            f"The license signing key {key.kid} cannot be unsealed with this LICENSE_HASH_KEY"
            " (or SECRET_KEY): was it changed? `manage.py rotate_signing_key` makes a new one."
        ) from error
    header = {"alg": "EdDSA", "kid": key.kid, "typ": "JWT"}
    encoded = b64url(json.dumps(header, separators=(",", ":")).encode())
    return Signer(key.kid, Ed25519PrivateKey.from_private_bytes(raw), encoded, time.monotonic())


def current_signer() -> Signer:
    global _signer
    signer = _signer
    if signer is not None and time.monotonic() - signer.loaded_at < REFRESH_SECONDS:
        return signer
    with _lock:
        key, _ = create_signing_key()
        if _signer is None or _signer.kid != key.kid:
            _signer = _unsealed(key)
        else:  # the same key: no need to unseal it again
            _signer = Signer(_signer.kid, _signer.private_key, _signer.header, time.monotonic())
        return _signer


def sign(claims: dict[str, Any]) -> str:
    """A compact JWS of `claims` with the current key."""
    signer = current_signer()
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{signer.header}.{payload}"
    return f"{signing_input}.{b64url(signer.private_key.sign(signing_input.encode()))}"


def certificate(
    *,
    license_id: str,
    product: str,
    status: str,
    expires_at: datetime | None,
    fingerprint: str | None = None,
) -> str:
    """The certificate of a license as the shop sees it now. `status` is the license's status,
    or "expired"; `fingerprint` (the device's, in clear) only when it is activated: the
    certificate then carries its SHA-256, which the client can compute and compare offline
    (the keyed hash the shop stores could not be checked without the shop's secret)."""
    now = int(time.time())
    claims = {
        "iss": settings.SITE_URL,
        "sub": license_id,
        "product": product,
        "status": status,
        "license_exp": int(expires_at.timestamp()) if expires_at else None,
        "iat": now,
        "exp": now + settings.LICENSE_CERTIFICATE_TTL,
    }
    if fingerprint is not None:
        claims["fingerprint_sha256"] = hashlib.sha256(fingerprint.encode()).hexdigest()
    return sign(claims)


def published_keys() -> list[SigningKey]:
    """The current key and the retired ones whose certificates may still be unexpired."""
    create_signing_key()  # a fresh install publishes the key its first certificate will use
    keep = settings.LICENSE_CERTIFICATE_TTL + REFRESH_SECONDS
    since = timezone.now() - timedelta(seconds=keep)
    return list(SigningKey.objects.filter(Q(current=True) | Q(retired_at__gt=since)))


def key_set() -> dict[str, list[dict[str, str]]]:
    """The JWK Set (RFC 7517) of the published keys (RFC 8037's OKP key type)."""
    return {
        "keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": key.public_key, "kid": key.kid}
            | {"use": "sig", "alg": "EdDSA"}
            for key in published_keys()
        ]
    }
