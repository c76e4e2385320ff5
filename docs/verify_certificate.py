"""Check a license certificate offline (needs only `pip install cryptography`).

Fetch the key set from GET /api/licenses/public-key while online and keep it with the
certificate; fetch it again when a certificate names a kid it does not have.
"""

import base64
import hashlib
import json
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class InvalidCertificate(Exception):
    pass


def _decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify_certificate(token, key_set, *, product, fingerprint=None, now=None):
    """The certificate's claims if the shop signed it, it has not expired, and it says the
    license is active for `product` (and, given a `fingerprint`, activated on this device)."""
    try:
        header_part, payload_part, signature_part = token.split(".")
        header = json.loads(_decode(header_part))
        keys = {key["kid"]: key for key in key_set["keys"] if key["crv"] == "Ed25519"}
        public_key = Ed25519PublicKey.from_public_bytes(_decode(keys[header["kid"]]["x"]))
        if header["alg"] != "EdDSA":
            raise ValueError("not an Ed25519 signature")
        public_key.verify(_decode(signature_part), f"{header_part}.{payload_part}".encode())
        claims = json.loads(_decode(payload_part))
    except (ValueError, KeyError, TypeError, InvalidSignature) as error:
        raise InvalidCertificate(f"not signed by the shop: {error!r}") from error
    now = time.time() if now is None else now
    if claims["exp"] <= now:
        raise InvalidCertificate("the certificate expired: validate online again")
    if claims["product"] != product:
        raise InvalidCertificate("the certificate is for another product")
    if claims["status"] != "active":
        raise InvalidCertificate(f"the license is {claims['status']}")
    if claims["license_exp"] is not None and claims["license_exp"] <= now:
        raise InvalidCertificate("the license expired")
    if fingerprint is not None:
        mine = hashlib.sha256(fingerprint.encode()).hexdigest()
        if claims.get("fingerprint_sha256") != mine:
            raise InvalidCertificate("the license is not activated on this device")
    return claims
