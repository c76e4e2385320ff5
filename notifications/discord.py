"""Discord webhooks over plain HTTP: one request, and what Discord's answer means for the sender.

No Django here. Errors are one small contract: `Answer.permanent` (do not retry this body),
`Answer.destination_problem` (no body would be accepted: why, in words), `Answer.message_gone`
(the message edited is no longer there: post a new one), `Answer.banned` (Cloudflare refuses
this address), `Answer.transient` (try again later), or a wait in `retry_after`.
"""

import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import parse_qs

import requests

WEBHOOK_URL = re.compile(
    r"^https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api(?:/v\d+)?/webhooks/(\d{15,25})/([\w-]{20,100})/?$",
    re.ASCII,
)


THREAD_ID = re.compile(r"^\d{15,25}$", re.ASCII)

# Discord's JSON error codes that are about where the webhook posts, not about the message: no
# other body would be accepted, so the destination waits for staff. From Discord's list of JSON
# error codes (opcodes-and-status-codes). Codes about thread *creation* (220002, 220003) cannot
# happen without `thread_name`, which the shop never sends, but they mean the same: fix the setup.
FORUM_NEEDS_THREAD = (
    "the channel is a forum or media channel, where messages go into a post: set the thread id"
    " of a post (or paste the URL with ?thread_id=…)"
)
DESTINATION_ERRORS = {
    10003: "the channel or thread no longer exists",
    10015: "the webhook was deleted",
    40058: FORUM_NEEDS_THREAD,
    50001: "the webhook has no access to its channel any more",
    50008: "the channel is not a text channel",
    50013: "the webhook lacks the permission to post in its channel",
    50024: "the webhook cannot post in this kind of channel",
    50027: "the webhook's token is wrong",
    50083: "the thread is archived and cannot be reopened",
    160005: "the thread is locked",
    220001: FORUM_NEEDS_THREAD,
    220002: "the forum channel got both a thread id and a thread name",
    220003: "the channel is not a forum channel, where a thread could be created",
    220004: "webhooks cannot post in this forum channel",
}
DESTINATION_STATUSES = {
    401: "the webhook's token is wrong",
    403: "the webhook may no longer post in its channel",
    404: "the webhook was deleted",
}
# About the destination but temporary ("send messages has been temporarily disabled"): waited
# out like an outage, not a reason to switch the destination off.
TEMPORARY_ERRORS = {40004}
# 404 Unknown Message: an edit found no message of this webhook where it looked (someone deleted
# it). About that message alone, unlike 404 Unknown Webhook (10015).
UNKNOWN_MESSAGE = 10008


class InvalidWebhookURL(ValueError):
    pass


class WebhookURL(NamedTuple):
    webhook_id: str
    token: str
    thread_id: str  # "" when the URL names no thread


def parse_webhook_url(url: str) -> WebhookURL:
    """A pasted webhook URL → its id, token and thread (`?thread_id=`, as Discord's "Copy
    Webhook URL" of a thread gives). Only these parts are kept: requests always go to
    DISCORD_API_BASE, so nothing else in what a user types can become a request target."""
    path, _, query = (url or "").strip().partition("?")
    match = WEBHOOK_URL.match(path)
    if not match:
        raise InvalidWebhookURL(
            "Not a Discord webhook URL (https://discord.com/api/webhooks/<id>/<token>)."
        )
    thread_id = (parse_qs(query).get("thread_id") or [""])[-1]
    if thread_id and not THREAD_ID.match(thread_id):
        raise InvalidWebhookURL("The URL's thread_id is not a Discord id (15 to 25 digits).")
    return WebhookURL(match.group(1), match.group(2), thread_id)


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
    # A 429 without Discord's JSON body or X-RateLimit-Scope, or a 403 without its JSON error:
    # Cloudflare refuses this address.
    banned: bool = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def rate_limited(self) -> bool:
        return self.status == 429

    @property
    def address_wide(self) -> bool:
        """A 429 that holds every request from this address: Discord's global limit, or a ban."""
        return self.rate_limited and (self.is_global or self.scope == "global" or self.banned)

    @property
    def message_gone(self) -> bool:
        return self.status == 404 and self.error_code == UNKNOWN_MESSAGE

    @property
    def destination_problem(self) -> str:
        """Why Discord refuses the destination itself, whatever the message, in words; "" when
        it does not."""
        if self.error_code in TEMPORARY_ERRORS or self.banned or self.message_gone:
            return ""
        words = DESTINATION_ERRORS.get(self.error_code or 0)
        if words is None and self.status in DESTINATION_STATUSES:
            words = DESTINATION_STATUSES[self.status]
        if words is None or not 400 <= self.status < 500 or self.rate_limited:
            return ""
        code = f", code {self.error_code}" if self.error_code else ""
        return f"Discord answered {self.status}{code}: {words}."

    @property
    def permanent(self) -> bool:
        """This body will never be accepted (400): send something else instead."""
        return (
            400 <= self.status < 500
            and not (self.rate_limited or self.transient or self.banned)
            and not self.destination_problem
        )

    @property
    def transient(self) -> bool:
        return self.status == 0 or self.status >= 500 or self.error_code in TEMPORARY_ERRORS

    @property
    def invalid(self) -> bool:
        """Counted by Discord towards its ban of an address (10,000 in 10 minutes): 401, 403,
        and 429 except the `shared` scope."""
        return self.status in (401, 403) or (self.rate_limited and self.scope != "shared")


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
    return _request("post", url, token, payload, params, timeout, session)


def edit_webhook_message(
    api_base: str,
    webhook_id: str,
    token: str,
    message_id: str,
    payload: dict[str, Any],
    *,
    thread_id: str = "",
    timeout: float = 10,
    session: requests.Session | None = None,
) -> Answer:
    """Discord's "Edit Webhook Message": the message this webhook posted, replaced by `payload`
    (its `embeds`, `allowed_mentions`). A message in a thread is found only with its
    `thread_id`; answered with the message, as a post with ?wait=true is."""
    url = f"{api_base.rstrip('/')}/webhooks/{webhook_id}/{token}/messages/{message_id}"
    params = {"thread_id": thread_id} if thread_id else {}
    return _request("patch", url, token, payload, params, timeout, session)


def _request(method, url, token, payload, params, timeout, session) -> Answer:
    try:
        response = (session or requests).request(
            method, url, json=payload, params=params, timeout=timeout
        )
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
        # Discord always says how long in its JSON body; Cloudflare's ban page (HTML, or a
        # static JSON message with code 0) says nothing, and may last an hour (discord-api-docs
        # 5810). A 429 with Discord's own error code (30046: too many edits of hour-old
        # messages) is Discord's, whatever else it lacks.
        answer.error_code = _number(body.get("code"), int)
        answer.banned = answer.retry_after is None and not answer.scope and not answer.error_code
        if answer.banned:
            answer.retry_after = _number(headers.get("Retry-After"), float)
            answer.error = "HTTP 429 without Discord's rate-limit body: a Cloudflare ban"
        elif answer.retry_after is None:
            answer.retry_after = _number(headers.get("Retry-After"), float) or 1.0
    elif response.status_code == 403 and not body:
        # Discord's own 403s carry a JSON error code; an HTML one is Cloudflare's "Access
        # denied" (error 1020): the address is blocked, not the webhook. Waited out as a ban.
        answer.banned = True
        answer.retry_after = _number(headers.get("Retry-After"), float)
        answer.error = "HTTP 403 without Discord's JSON body: Cloudflare blocks this server"
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
