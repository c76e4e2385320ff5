"""The license API: validate, activate, deactivate, and the public keys of its certificates.

Answers never carry customer data (no email, order number or key). Every answer about a license
found for the product asked carries `certificate` (certificates.py) for offline checks.
"""

import json
import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from shop.proxies import client_address
from shop.ratelimit import hit

from . import activations, statements
from .certificates import certificate, key_set
from .keys import hash_fingerprint, hash_key
from .models import LABEL_MAX, Activation

MAX_BODY = 4096
MAX_FINGERPRINT = 255
# activate's answers that refuse, by code; the ones not listed are 403 (the license refuses).
REFUSAL_STATUS = {"NOT_FOUND": 404, "TOO_MANY_ACTIVATIONS": 409}


class BadRequest(Exception):
    pass


def _bad(message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=400)


def _too_many(retry_after: int, body: dict[str, Any] | None = None) -> JsonResponse:
    response = JsonResponse(body or {"error": "rate limited"}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def _read(request: HttpRequest) -> dict[str, Any]:
    body = request.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise BadRequest("body too large")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise BadRequest("body is not JSON") from error
    if not isinstance(data, dict):
        raise BadRequest("body is not a JSON object")
    return data


def _text(data: dict[str, Any], name: str, limit: int, *, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not (isinstance(value, str) and value.strip()):
        raise BadRequest(f'expected "{name}": a non-empty string')
    if len(value) > limit:
        raise BadRequest(f'"{name}" is longer than {limit} characters')
    return value


def _label(data: dict[str, Any]) -> str:
    """A machine name as shown to its owner and staff: printable characters only (PostgreSQL
    refuses NUL in text), shortened rather than refused: a long host name is no error."""
    value = data.get("label", "")
    if not isinstance(value, str):
        raise BadRequest('"label" must be a string')
    return "".join(ch for ch in value[: LABEL_MAX * 4] if ch.isprintable()).strip()[:LABEL_MAX]


def _limited(request: HttpRequest, digest: str) -> int:
    """Seconds to wait, or 0. Per client address, and per key *and* address: a stranger who
    knows a key uses up his own allowance on it, never its owner's."""
    window, client = settings.LICENSE_VALIDATE_WINDOW, client_address(request)
    wait = hit("client", client, limit=settings.LICENSE_VALIDATE_RATE, window=window)
    return wait or hit(
        "key", f"{digest}:{client}", limit=settings.LICENSE_VALIDATE_KEY_RATE, window=window
    )


def _terms(expires_at: datetime | None, used: int, limit: int | None) -> dict[str, Any]:
    return {
        "expires_at": expires_at.isoformat() if expires_at else None,
        "activations": {"used": used, "limit": limit},
    }


_aware, _public = statements.aware, statements.uuid_text


def _certificate(row: tuple, code: str, fingerprint: str | None) -> str:
    status = "expired" if code == "EXPIRED" else row[2]
    return certificate(
        license_id=_public(row[1]),
        product=row[5],
        status=status,
        expires_at=_aware(row[3]),
        fingerprint=fingerprint,
    )


def _unknown(code: str) -> dict[str, Any]:
    return {"code": code, "expires_at": None, "activations": None}


def _parsed(request: HttpRequest, parse) -> tuple[Any, JsonResponse | None]:
    try:
        return parse(_read(request)), None
    except BadRequest as error:
        return None, _bad(str(error))


@login_not_required
@csrf_exempt
@require_POST
def validate(request: HttpRequest) -> JsonResponse:
    """{"key", "product", "fingerprint"?} → {"valid", "code", "expires_at", "activations",
    "certificate"}. Codes in order: NOT_FOUND, PRODUCT_MISMATCH, SUSPENDED, REVOKED, PENDING,
    EXPIRED, then NOT_ACTIVATED (a fingerprint given and not active), else VALID."""
    fields, error = _parsed(
        request,
        lambda data: (
            _text(data, "key", 200),
            _text(data, "product", 50),
            _text(data, "fingerprint", MAX_FINGERPRINT, required=False),
        ),
    )
    if error:
        return error
    key, product, fingerprint = fields
    digest = hash_key(key)
    if wait := _limited(request, digest):
        return _too_many(wait)
    if fingerprint is None:
        row = statements.find_license(digest)
    else:
        row = statements.find_license_with_device(digest, hash_fingerprint(fingerprint))
    if row is None or row[5] != product:
        code = "NOT_FOUND" if row is None else "PRODUCT_MISMATCH"
        return JsonResponse({"valid": False, **_unknown(code)})
    now = timezone.now()
    code = activations.license_code(row[2], _aware(row[3]), now)
    answer: dict[str, Any] = {}
    device = None
    if fingerprint is not None:
        device = row[7]
        answer["activation_id"] = _public(row[8]) if device else None
        if device:
            activations.touch(device, _aware(row[9]), now)
        elif code == "VALID":
            code = "NOT_ACTIVATED"
    return JsonResponse(
        {
            "valid": code == "VALID",
            "code": code,
            **answer,
            **_terms(_aware(row[3]), row[6], row[4]),
            "certificate": _certificate(row, code, fingerprint if device else None),
        }
    )


@login_not_required
@csrf_exempt
@require_POST
def activate(request: HttpRequest) -> JsonResponse:
    """{"key", "product", "fingerprint", "label"?} → 201 {"activated": true, "code":
    "ACTIVATED", "activation_id", …}; 200 with the same id when the device is already active.
    Refused: 404 NOT_FOUND, 403 PRODUCT_MISMATCH/SUSPENDED/REVOKED/PENDING/EXPIRED, 409
    TOO_MANY_ACTIVATIONS."""
    fields, error = _parsed(
        request,
        lambda data: (
            _text(data, "key", 200),
            _text(data, "product", 50),
            _text(data, "fingerprint", MAX_FINGERPRINT),
            _label(data),
        ),
    )
    if error:
        return error
    key, product, fingerprint, label = fields
    digest = hash_key(key)
    if wait := _limited(request, digest):
        return _too_many(wait)
    try:
        done = activations.activate_key(
            key_hash=digest, product=product, fingerprint=fingerprint, label=label
        )
    except activations.ActivationRefused as refused:
        status = REFUSAL_STATUS.get(refused.code, 403)
        if refused.terms is None:
            return JsonResponse({"activated": False, **_unknown(refused.code)}, status=status)
        terms = refused.terms
        body = {"activated": False, "code": refused.code}
        body |= _terms(terms.expires_at, refused.used, terms.max_activations)
        body["certificate"] = _terms_certificate(terms, refused.code, None)
        return JsonResponse(body, status=status)
    terms = done.license
    body = {
        "activated": True,
        "code": "ACTIVATED",
        "activation_id": str(done.activation.public_id),
        **_terms(terms.expires_at, done.used, terms.max_activations),
        "certificate": _terms_certificate(terms, "VALID", fingerprint),
    }
    return JsonResponse(body, status=201 if done.created else 200)


def _terms_certificate(terms: statements.Terms, code: str, fingerprint: str | None) -> str:
    return certificate(
        license_id=terms.public_id,
        product=terms.product,
        status="expired" if code == "EXPIRED" else terms.status,
        expires_at=terms.expires_at,
        fingerprint=fingerprint,
    )


@login_not_required
@csrf_exempt
@require_POST
def deactivate(request: HttpRequest) -> JsonResponse:
    """{"key", "activation_id"} → 200 {"deactivated": true, "code": "DEACTIVATED", …}, also
    for one already deactivated. 404 NOT_FOUND unless the key owns that activation; 429
    TOO_MANY_DEACTIVATIONS (with Retry-After) past LICENSE_DEACTIVATIONS_PER_30_DAYS."""
    fields, error = _parsed(request, lambda data: (_text(data, "key", 200), _activation_id(data)))
    if error:
        return error
    key, activation_id = fields
    digest = hash_key(key)
    if wait := _limited(request, digest):
        return _too_many(wait)
    activation = (
        Activation.objects.select_related("license")
        .filter(public_id=activation_id, license__key_hash=digest)
        .first()
    )
    if activation is None:  # unknown, or another license's: the same answer, nothing touched
        return JsonResponse({"deactivated": False, **_unknown("NOT_FOUND")}, status=404)
    license = activation.license
    try:
        activations.deactivate(activation, by=None)
    except activations.ActivationRefused as refused:
        body = {"deactivated": False, "code": refused.code, "message": str(refused)}
        return _too_many(refused.retry_after, body)
    used = activations.active_activations(license).count()
    return JsonResponse(
        {
            "deactivated": True,
            "code": "DEACTIVATED",
            "activation_id": str(activation_id),
            **_terms(license.expires_at, used, license.max_activations),
        }
    )


def _activation_id(data: dict[str, Any]) -> uuid.UUID:
    value = _text(data, "activation_id", 36)
    try:
        return uuid.UUID(value)
    except ValueError as error:
        raise BadRequest('"activation_id" is not an activation id') from error


@login_not_required
@require_GET
def public_key(request: HttpRequest) -> JsonResponse:
    """The JWK Set of the keys that sign certificates (the current one and those rotated away
    whose certificates may still be unexpired)."""
    response = JsonResponse(key_set())
    # Short: a client that meets an unknown kid fetches again anyway.
    response["Cache-Control"] = "public, max-age=300"
    return response
