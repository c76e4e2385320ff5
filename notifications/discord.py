"""Discord webhooks over plain HTTP: one request, and what Discord's answer means for the sender.

No Django here. Errors are one small contract: `Answer.permanent` (do not retry this body),
`Answer.gone` (the webhook is deleted or its token is wrong), or a wait in `retry_after`.
"""

import re
from dataclasses import dataclass, field
from typing import Any

import requests

WEBHOOK_URL = re.compile(
    r"^https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api(?:/v\d+)?/webhooks/(\d{15,25})/([\w-]{20,100})/?$",
    re.ASCII,
)


class InvalidWebhookURL(ValueError):
    pass


def parse_webhook_url(url: str) -> tuple[str, str]:
    """A pasted webhook URL → (id, token). Only these two parts are kept: requests always go to
    DISCORD_API_BASE, so nothing else in what a user types can become a request target."""
    match = WEBHOOK_URL.match((url or "").strip().split("?")[0])
    if not match:
        raise InvalidWebhookURL(
            "Not a Discord webhook URL (https://discord.com/api/webhooks/<id>/<token>)."
        )
    return match.group(1), match.group(2)


def redact(text: str, token: str) -> str:
    return text.replace(token, "[token]") if token else text


@dataclass
class Answer:
    status: int  # 0: no answer (network error or timeout)
    message_id: str = ""
    remaining: int | None = None  # X-RateLimit-Remaining
    reset_after: float | None = None  # X-RateLimit-Reset-After, seconds
    retry_after: float | None = None  # 429 body, seconds
    scope: str = ""  # user, global or shared
    is_global: bool = False
    error_code: int | None = None
    error: str = ""
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def rate_limited(self) -> bool:
        return self.status == 429

    @property
    def gone(self) -> bool:
        # 404 unknown webhook, 401 wrong token; 403: the webhook may no longer post there.
        return self.status in (401, 403, 404)

    @property
    def permanent(self) -> bool:
        """This body will never be accepted (400): send something else instead."""
        return self.status == 400 or (
            400 <= self.status < 500 and not (self.gone or self.rate_limited)
        )

    @property
    def transient(self) -> bool:
        return self.status == 0 or self.status >= 500


def execute_webhook(
    api_base: str,
    webhook_id: str,
    token: str,
    payload: dict[str, Any],
    *,
    thread_id: str = "",
    timeout: float = 10,
    session: requests.Session | None = None,
) -> Answer:
    url = f"{api_base.rstrip('/')}/webhooks/{webhook_id}/{token}"
    params = {"wait": "true", **({"thread_id": thread_id} if thread_id else {})}
    try:
        response = (session or requests).post(url, json=payload, params=params, timeout=timeout)
    except requests.RequestException as error:
        return Answer(status=0, error=redact(f"{type(error).__name__}: {error}", token)[:300])
    return _read(response, token)


def _read(response: requests.Response, token: str) -> Answer:
    headers = response.headers
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    answer = Answer(
        status=response.status_code,
        remaining=_number(headers.get("X-RateLimit-Remaining"), int),
        reset_after=_number(headers.get("X-RateLimit-Reset-After"), float),
        scope=headers.get("X-RateLimit-Scope", ""),
        is_global=bool(body.get("global")) or headers.get("X-RateLimit-Global") == "true",
        body=body,
    )
    if answer.ok:
        answer.message_id = str(body.get("id", ""))
    elif answer.rate_limited:
        answer.retry_after = _number(body.get("retry_after"), float)
        if answer.retry_after is None:
            answer.retry_after = _number(headers.get("Retry-After"), float) or 1.0
    else:
        answer.error_code = _number(body.get("code"), int)
        message = body.get("message") or response.reason or ""
        answer.error = redact(f"HTTP {response.status_code}: {message}", token)[:300]
    return answer


def _number(value, kind):
    try:
        return kind(value) if value is not None else None
    except (TypeError, ValueError):
        return None
