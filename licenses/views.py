import json

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from config.proxies import client_address
from config.ratelimit import hit
from orders.models import Product

from .keys import hash_key
from .models import License

MAX_BODY = 4096
# The lookup written out: building it with the ORM cost more CPU per request than the whole bare
# request (bench/validate_throughput.py, docs/benchmarks.md). key_hash is unique: one row at most.
LOOKUP = (
    f"SELECT l.status, p.slug FROM {License._meta.db_table} l"
    f" JOIN {Product._meta.db_table} p ON p.id = l.product_id WHERE l.key_hash = %s"
)
CODES = {"active": "VALID", "suspended": "SUSPENDED", "revoked": "REVOKED", "pending": "PENDING"}


def _bad(message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=400)


def _too_many(retry_after: int) -> JsonResponse:
    response = JsonResponse({"error": "rate limited"}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


@login_not_required
@csrf_exempt
@require_POST
def validate(request: HttpRequest) -> JsonResponse:
    """{"key", "product"} → {"valid", "code"}. Never says whose key it is."""
    body = request.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return _bad("body too large")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return _bad("body is not JSON")
    key, product = (data.get("key"), data.get("product")) if isinstance(data, dict) else (0, 0)
    if not (isinstance(key, str) and isinstance(product, str) and key.strip() and product):
        return _bad('expected {"key": "...", "product": "<slug>"}')
    if len(key) > 200 or len(product) > 50:
        return _bad("key or product too long")
    window = settings.LICENSE_VALIDATE_WINDOW
    client = client_address(request)
    wait = hit("client", client, limit=settings.LICENSE_VALIDATE_RATE, window=window)
    digest = hash_key(key)
    wait = wait or hit("key", digest, limit=settings.LICENSE_VALIDATE_KEY_RATE, window=window)
    if wait:
        return _too_many(wait)
    with connection.cursor() as cursor:
        cursor.execute(LOOKUP, [digest])
        found = cursor.fetchone()
    if found is None:
        code = "NOT_FOUND"
    elif found[1] != product:
        code = "PRODUCT_MISMATCH"
    else:
        code = CODES[found[0]]
    return JsonResponse({"valid": code == "VALID", "code": code})
