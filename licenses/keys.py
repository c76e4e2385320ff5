"""License keys: generating them and the keyed hash they are looked up by."""

import functools
import hashlib
import hmac
import re
import secrets

from django.conf import settings

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_SEPARATORS = re.compile(r"[\s\-]+")


def generate_key(prefix: str = "") -> str:
    """25 Crockford base32 characters (125 bits from `secrets`) in 5 groups of 5."""
    bits = secrets.randbits(125)
    body = "".join(CROCKFORD[(bits >> shift) & 31] for shift in range(0, 125, 5))
    groups = "-".join(body[i : i + 5] for i in range(0, 25, 5))
    return f"{prefix.upper()}-{groups}" if prefix else groups


def normalise(key: str) -> str:
    """What two spellings of one key have in common: case, spaces and dashes do not count."""
    return _SEPARATORS.sub("", key).upper()


def _secret() -> bytes:
    return (settings.LICENSE_HASH_KEY or settings.SECRET_KEY).encode()


def hash_key(key: str) -> str:
    return hmac.new(_secret(), normalise(key).encode(), hashlib.sha256).hexdigest()


def derived_key(context: str) -> bytes:
    """A key of its own for each other use of the license secret, so that no two uses can ever
    produce the same value: a fingerprint's hash is never a key's hash, whatever was typed."""
    return _derive(_secret(), context)


@functools.lru_cache(maxsize=16)
def _derive(secret: bytes, context: str) -> bytes:
    # Remembered per secret: validate with a fingerprint derives the same key on every request.
    return hmac.new(secret, f"license-shop/{context}".encode(), hashlib.sha256).digest()


def hash_fingerprint(fingerprint: str) -> str:
    """The keyed hash a device's fingerprint is stored as (the fingerprint itself never is)."""
    return hmac.new(derived_key("fingerprint"), fingerprint.encode(), hashlib.sha256).hexdigest()
