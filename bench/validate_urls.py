"""The shop's URLs plus `bare`, the ceiling POST /api/licenses/validate is measured against.

`bare` goes through the same middleware and decorators and parses the same JSON body, then
answers without hashing the key, counting the request or touching the database.
"""

import json

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from config.urls import urlpatterns as shop_urlpatterns
from licenses.views import MAX_BODY


@login_not_required
@csrf_exempt
@require_POST
def bare(request: HttpRequest) -> JsonResponse:
    body = request.read(MAX_BODY + 1)
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return JsonResponse({"error": "body is not JSON"}, status=400)
    if not isinstance(data, dict) or not isinstance(data.get("key"), str):
        return JsonResponse({"error": 'expected {"key": "...", "product": "<slug>"}'}, status=400)
    return JsonResponse({"valid": False, "code": "NOT_CHECKED"})


urlpatterns = [
    path("bench/validate-bare", bare, name="bench_validate_bare"),
    *shop_urlpatterns,
]
