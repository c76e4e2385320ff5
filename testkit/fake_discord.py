"""A small Discord stand-in on 127.0.0.1 that answers webhook executions the way Discord does.

It keeps a per-webhook bucket advertised in X-RateLimit-* headers, a hidden per-channel limit
answered by a 429 with scope `shared`, a global 429 on demand, Discord's body validation (400,
code 50035; 400 `{"embeds": ["0"]}` for an embed `url` whose host has no dot), 404 (10015) for a
deleted webhook and 401 (50027) for a wrong token, forum channels (400, 220001, without a
thread) and their threads, and on demand: 500, 502, dropped connections, slow answers, hanging
requests, a 429 while `X-RateLimit-Remaining` is still above 0, and Cloudflare's ban (429 with
an HTML page, no JSON body, no X-RateLimit-* headers) for every request during it. Random faults
too, for soak runs: `fail_rate` of requests meet a 500, a 502 or a dropped connection and
`hang_rate` hang, drawn from a generator seeded with `seed`, so a run's faults can be replayed. Every request is
recorded with what the sender had been told: a request that arrives while its sender was told to
wait (by `X-RateLimit-Remaining: 0` and `Reset-After`, or by a 429's `retry_after`) is a
violation. What a channel SHOWS is recorded too: of several embeds of one message sharing a
`url`, Discord shows only the first.

It also edits messages (PATCH /webhooks/{id}/{token}/messages/{message.id}, Discord's "Edit
Webhook Message") and keeps each message as it now reads. What that relies on:
- the route, its `thread_id` query parameter and its answer, 200 with the message object:
  discord-api-docs, resources/webhook.mdx, "Edit Webhook Message" (thread_id on PATCH: PR 3995);
- 404 with code 10008 (Unknown Message) when no message of this webhook is in the channel
  searched, which is the thread named by `thread_id`, else the webhook's own channel: a message
  deleted since, another webhook's, or one in a thread edited without its `thread_id`
  (discord-api-docs issue 3519; discohook issue 29, whose maintainer names the rule). The webhook
  is checked first, so a deleted webhook is still 404 with 10015 and a wrong token 401;
- an edit is validated as a post is (400, code 50035, the same embed limits: the edit's `embeds`
  are embed objects, up to 10) and meets the same limits: Discord's docs say rate limits are
  per route and that webhooks are a top-level resource, without saying whether an edit shares
  the bucket of executions. Here it does, and counts towards the hidden channel limit too:
  stricter than Discord may be, so a sender that passes here passes there;
- messages older than an hour may be edited 3 times per 6 seconds per channel; beyond that a
  429 with code 30046 (discord-api-docs opcodes-and-status-codes, 30046, and PR 4381;
  discord-userdoccers, "Edit Message"; a 429 carrying it in aikaterna-cogs issue 302). Its body
  here is Discord's rate-limit body with `code`, as the rate-limits page describes "for some
  limits";
- an edit without `allowed_mentions` parses its content with the default allowances, whatever
  the post said (the same docs): `pings` counts an edit's mentions as a post's.
Edits are recorded like posts (`method` "PATCH", `target` the message edited), and an edit that
arrives while another edit of the same message is still unanswered is flagged `overlapping`.

    def test_something(fake_discord):  # the fixture in tests/conftest.py
        destination = fake_discord.destination("orders")
        fake_discord.fail_next("502", times=2)
        ...
        assert fake_discord.violations() == []

Standalone, for benchmarks, unknown webhooks are created on first use; GET /_stats answers the
counts (`?full=1` adds every request) and POST /_control takes {"action": "fail_next", "kind":
"502", "times": 3}, {"action": "limit_globally", "retry_after": 2}, {"action": "throttle_next",
"retry_after": 2}, {"action": "ban", "seconds": 600}, {"action": "delete_webhook", "webhook_id":
"..."}, {"action": "add_webhook", "webhook_id", "token", "channel_id", "forum"} or {"action":
"delete_message", "message_id": "..."}:

    python -m testkit.fake_discord --port 8090 --bucket-limit 5 --bucket-window 2 \
        [--fail-rate 0.2 --hang-rate 0.02 --seed 1]
"""

import argparse
import hashlib
import itertools
import json
import math
import random
import re
import secrets
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import asdict, dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

WEBHOOK_PATH = re.compile(r"^/api(?:/v\d+)?/webhooks/(\d+)/([^/]+)$")
MESSAGE_PATH = re.compile(r"^/api(?:/v\d+)?/webhooks/(\d+)/([^/]+)/messages/(\d+)$")
# Discord's limit on edits of messages older than an hour: 3 per 6 seconds, per channel.
OLD_MESSAGE_AGE = 3600.0
DISCORD_EPOCH_MS = 1_420_070_400_000
LIMITS = {"title": 256, "description": 4096, "footer": 2048, "author": 256}
FIELD_LIMITS = {"name": 256, "value": 1024}
FAULTS = ("500", "502", "drop", "hang", "slow")
FAILURES = ("500", "502", "drop")  # what `fail_rate` draws from
_increment = itertools.count()


def snowflake() -> str:
    return str(((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | (next(_increment) % 4096))


def _up(seconds: float) -> float:
    """Discord's headers carry milliseconds; rounding up never tells a sender to come back early."""
    return max(0.0, math.ceil(seconds * 1000) / 1000)


# Discord's validation of an execute-webhook body.


def _error(code: str, message: str) -> dict[str, Any]:
    return {"_errors": [{"code": code, "message": message}]}


def _text(errors: dict, key: str, value: Any, limit: int, *, required: bool = False) -> None:
    if value is None:  # a missing field name or value is refused; an empty one is fine
        if required:
            errors[key] = _error("BASE_TYPE_REQUIRED", "This field is required")
    elif not isinstance(value, str):
        errors[key] = _error("STRING_TYPE_CONVERT", "Could not interpret value as string.")
    elif len(value) > limit:
        errors[key] = _error("BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _embed_errors(embed: Any) -> dict[str, Any]:
    if not isinstance(embed, dict):
        return _error("MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
    errors: dict[str, Any] = {}
    _text(errors, "title", embed.get("title"), LIMITS["title"])
    _text(errors, "description", embed.get("description"), LIMITS["description"])
    for part in ("footer", "author"):
        if embed.get(part) is not None:
            key = "text" if part == "footer" else "name"
            inner: dict[str, Any] = {}
            _text(inner, key, (embed[part] or {}).get(key), LIMITS[part], required=True)
            if inner:
                errors[part] = inner
    url = embed.get("url")
    if url is not None and not re.match(r"^https?://[^\s/]+", str(url)):
        errors["url"] = _error("URL_TYPE_INVALID_URL", "Not a well formed URL.")
    color = embed.get("color")
    if color is not None and not (isinstance(color, int) and 0 <= color <= 0xFFFFFF):
        errors["color"] = _error(
            "NUMBER_TYPE_MAX", "int value should be less than or equal to 16777215."
        )
    if embed.get("timestamp") is not None:
        try:
            datetime.fromisoformat(str(embed["timestamp"]))
        except ValueError:
            errors["timestamp"] = _error("DATE_TIME_TYPE_PARSE", "Could not parse timestamp.")
    fields = embed.get("fields") or []
    if len(fields) > 25:
        errors["fields"] = _error("BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    else:
        for n, item in enumerate(fields):
            inner = {}
            for key, limit in FIELD_LIMITS.items():
                _text(inner, key, (item or {}).get(key), limit, required=True)
            if inner:
                errors.setdefault("fields", {})[str(n)] = inner
    return errors


def embed_size(embed: dict[str, Any]) -> int:
    """What counts towards 6000 per message, in code points."""
    parts = [embed.get("title"), embed.get("description")]
    parts += [(embed.get("footer") or {}).get("text"), (embed.get("author") or {}).get("name")]
    parts += [text for f in embed.get("fields") or [] for text in (f.get("name"), f.get("value"))]
    return sum(len(p) for p in parts if isinstance(p, str))


def dotted_host(url: str) -> bool:
    """Whether Discord accepts `url` as an embed's link: it refuses a host without a dot
    (`localhost`, `shop:8000`), as Gitea, Grafana and Bugsink users found."""
    host = urlsplit(url).hostname or ""
    return "." in host.strip(".")


def visible(embeds: list[Any]) -> list[Any]:
    """What a channel shows of one message's embeds: Discord's message docs say that of several
    embeds sharing a `url`, only the first is shown."""
    seen: set[str] = set()
    shown = []
    for embed in embeds:
        url = embed.get("url") if isinstance(embed, dict) else None
        if url is None or url not in seen:
            shown.append(embed)
        if url is not None:
            seen.add(url)
    return shown


def validation_errors(body: Any) -> dict[str, Any] | None:
    """Discord's answer to an invalid body (the whole 400 JSON), or None if it is accepted."""
    if not isinstance(body, dict):
        return {"code": 50109, "message": "The request body contains invalid JSON."}
    errors: dict[str, Any] = {}
    _text(errors, "content", body.get("content"), 2000)
    embeds = body.get("embeds") or []
    if not isinstance(embeds, list):
        errors["embeds"] = _error("LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
    elif len(embeds) > 10:
        errors["embeds"] = _error("BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    else:
        for n, embed in enumerate(embeds):
            if inner := _embed_errors(embed):
                errors.setdefault("embeds", {})[str(n)] = inner
        if "embeds" not in errors and sum(embed_size(e) for e in embeds) > 6000:
            errors["embeds"] = _error(
                "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
            )
    mentions = body.get("allowed_mentions")
    if mentions is not None and not (
        isinstance(mentions, dict)
        and set(mentions.get("parse") or []) <= {"roles", "users", "everyone"}
    ):
        errors["allowed_mentions"] = _error("ALLOWED_MENTIONS_PARSE_EXCLUSIVE", "Invalid parse.")
    if errors:
        return {"code": 50035, "message": "Invalid Form Body", "errors": errors}
    if not body.get("content") and not embeds:
        return {"code": 50006, "message": "Cannot send an empty message"}
    # Checked after the form: Discord's whole answer is then this, with no code or message.
    dotless = [str(n) for n, e in enumerate(embeds) if "url" in e and not dotted_host(e["url"])]
    return {"embeds": dotless} if dotless else None


def pings(body: dict[str, Any]) -> list[str]:
    """Who a message would notify: only `content` mentions, filtered by `allowed_mentions`."""
    content = body.get("content") or ""
    mentions = body.get("allowed_mentions")
    parse = {"everyone", "users", "roles"} if mentions is None else set(mentions.get("parse", []))
    found = []
    if "everyone" in parse:
        found += re.findall(r"@(?:everyone|here)", content)
    if "users" in parse:
        found += re.findall(r"<@!?\d+>", content)
    if "roles" in parse:
        found += re.findall(r"<@&\d+>", content)
    return found


# The server's state.


@dataclass
class Request:
    at: float
    webhook_id: str
    status: int  # 0: no answer (hang or dropped connection)
    body: Any = None
    scope: str = ""  # of a 429: user, shared or global
    retry_after: float | None = None
    told_to_wait_until: float = 0.0  # what the sender had been told when this arrived
    violation: bool = False
    window: float = 0.0  # the bucket window this request fell in
    thread_id: str = ""
    message_id: str = ""
    pings: list[str] = field(default_factory=list)
    banned: bool = False  # answered by Cloudflare's ban page
    fault: str = ""  # the injected fault it met, queued or random
    method: str = "POST"  # PATCH: an edit of the message `target`
    target: str = ""
    overlapping: bool = False  # an edit that came while another of its message was unanswered

    @property
    def embeds(self) -> list[dict[str, Any]]:
        """What the channel shows of this message (embeds sharing a `url` hidden)."""
        return visible(self.sent_embeds)

    @property
    def sent_embeds(self) -> list[dict[str, Any]]:
        return (self.body.get("embeds") or []) if isinstance(self.body, dict) else []

    @property
    def invalid(self) -> bool:
        """Counted by Discord towards its ban threshold: 401, 403, and a 429 not `shared`."""
        return self.status in (401, 403) or (self.status == 429 and self.scope != "shared")

    @property
    def allowed_mentions(self) -> Any:
        return self.body.get("allowed_mentions") if isinstance(self.body, dict) else None


@dataclass
class Message:
    """A message as the channel shows it now: its latest body, and how often it was edited."""

    id: str
    webhook_id: str
    channel_id: str  # the thread it went into, else the webhook's channel
    body: dict[str, Any]
    created: float
    edits: int = 0
    deleted: bool = False

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return visible(self.body.get("embeds") or [])


@dataclass
class Webhook:
    token: str
    channel_id: str
    deleted: bool = False
    forum: bool = False  # a forum or media channel: every message needs a thread


@dataclass
class Bucket:
    started: float = 0.0
    used: int = 0


@dataclass
class Fault:
    kind: str  # one of FAULTS
    seconds: float = 0.0


class FakeDiscord:
    """The server's state: webhooks, buckets, channels, queued faults and every request."""

    def __init__(
        self,
        *,
        bucket_limit: int = 5,
        bucket_window: float = 2.0,
        channel_limit: int = 30,
        channel_window: float = 60.0,
        hang_seconds: float = 5.0,
        fail_rate: float = 0.0,
        hang_rate: float = 0.0,
        seed: int | None = None,
        auto_register: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.bucket_limit, self.bucket_window = bucket_limit, bucket_window
        self.channel_limit, self.channel_window = channel_limit, channel_window
        self.hang_seconds = hang_seconds
        assert min(fail_rate, hang_rate) >= 0 and fail_rate + hang_rate <= 1
        self.fail_rate, self.hang_rate = fail_rate, hang_rate
        self.random = random.Random(seed)
        # Unknown webhooks are created on first use (for benchmarks); tests register them.
        self.auto_register = auto_register
        self.lock = threading.RLock()
        self.arrived = threading.Condition(self.lock)
        self.released = threading.Event()
        self.webhooks: dict[str, Webhook] = {}
        self.buckets: dict[str, Bucket] = defaultdict(Bucket)
        self.channels: dict[str, deque[float]] = defaultdict(deque)
        self.wait_until: dict[str, float] = {}
        self.global_until = 0.0
        self.global_next: deque[float] = deque()
        self.throttles: deque[float] = deque()
        self.banned_until = 0.0
        self.ban_body = "html"
        self.threads: dict[str, str] = {}  # thread id → its channel
        self.stored: dict[str, Message] = {}  # every message posted, as it reads now
        self.editing: Counter[str] = Counter()  # edits of each message not yet answered
        self.old_edits: dict[str, deque[float]] = defaultdict(deque)  # per channel
        self.old_edit_limit, self.old_edit_window = 3, 6.0
        self.faults: deque[Fault] = deque()
        self.requests: list[Request] = []
        self.server = ThreadingHTTPServer((host, port), _Handler)
        self.server.daemon_threads = True
        self.server.fake = self  # type: ignore[attr-defined]
        self.url = f"http://{host}:{self.server.server_address[1]}/api/v10"

    def start(self) -> "FakeDiscord":
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.released.set()  # lets hanging and slow handlers finish
        self.server.shutdown()
        self.server.server_close()

    # What tests do.

    def add_webhook(
        self, webhook_id: str, token: str, *, channel_id: str = "", forum: bool = False
    ) -> None:
        """Register a webhook; webhooks given one `channel_id` share its hidden limit. The
        webhook of a `forum` (or media) channel posts only into a thread of it."""
        with self.lock:
            self.webhooks[webhook_id] = Webhook(token, channel_id or webhook_id, forum=forum)

    def add_thread(self, webhook_id: str, thread_id: str) -> None:
        """A thread (a forum's post) in the channel of `webhook_id`."""
        with self.lock:
            self.threads[thread_id] = self.webhooks[webhook_id].channel_id

    def delete_webhook(self, webhook_id: str) -> None:
        with self.lock:
            self.webhooks[webhook_id].deleted = True

    def delete_message(self, message_id: str) -> None:
        """Someone deletes the message in Discord: its edits meet 404 Unknown Message."""
        with self.lock:
            self.stored[message_id].deleted = True

    def age_message(self, message_id: str, seconds: float) -> None:
        """The message was posted `seconds` earlier than it was."""
        with self.lock:
            self.stored[message_id].created -= seconds

    def fail_next(self, kind: str, *, times: int = 1, seconds: float | None = None) -> None:
        """The next `times` requests: "500" or "502" answers, "drop" closes the connection
        unanswered, "hang" holds it past the client's timeout (`hang_seconds`) and never posts,
        "slow" posts the message normally but holds the answer back `seconds`."""
        assert kind in FAULTS, kind
        wait = self.hang_seconds if seconds is None else seconds
        with self.lock:
            self.faults.extend(Fault(kind, wait) for _ in range(times))

    def limit_globally(self, retry_after: float = 1.0) -> None:
        """The next request meets Discord's global limit for `retry_after` seconds."""
        with self.lock:
            self.global_next.append(retry_after)

    def throttle_next(self, retry_after: float = 1.0, *, times: int = 1) -> None:
        """The next `times` requests meet a 429 (scope `user`) although the bucket still has
        requests left and says so in `X-RateLimit-Remaining`: Remaining is no promise
        (discord-api-docs issue 1454: a 429 right after `Remaining: 2`)."""
        with self.lock:
            self.throttles.extend([retry_after] * times)

    def ban(self, seconds: float = 3600.0, *, body: str = "html") -> None:
        """Cloudflare bans this address for `seconds`: every request meets a 429 without
        Discord's JSON body or X-RateLimit-* headers; `body` "html" is Cloudflare's page, "json"
        the static message some get instead (discord-api-docs issue 5810), "403" its "Access
        denied" page (error 1020: a firewall rule blocks the address), a 403 in HTML where
        Discord's own 403s always carry a JSON error code."""
        assert body in ("html", "json", "403"), body
        with self.lock:
            self.banned_until, self.ban_body = time.time() + seconds, body

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)

    def messages(self, webhook_id: str | None = None) -> list[Request]:
        """The accepted posts, in the order they arrived."""
        with self.lock:
            return [
                r
                for r in self.requests
                if r.status in (200, 204)
                and r.method == "POST"
                and webhook_id in (None, r.webhook_id)
            ]

    def edits(self, message_id: str | None = None) -> list[Request]:
        """The accepted edits, in the order they arrived."""
        with self.lock:
            return [
                r
                for r in self.requests
                if r.status == 200 and r.method == "PATCH" and message_id in (None, r.target)
            ]

    def channel(self, webhook_id: str | None = None) -> list[Message]:
        """The messages a channel shows now, oldest first: as last edited, deleted ones gone."""
        with self.lock:
            return [
                m
                for m in self.stored.values()
                if not m.deleted and webhook_id in (None, m.webhook_id)
            ]

    def overlapping_edits(self) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.overlapping]

    def embeds(self, webhook_id: str | None = None) -> list[dict[str, Any]]:
        """What the channel shows, in order: embeds Discord hides are left out."""
        return [embed for message in self.messages(webhook_id) for embed in message.embeds]

    def hidden_embeds(self) -> list[dict[str, Any]]:
        """Embeds that were accepted but that Discord does not show (a `url` seen earlier in
        their message)."""
        hidden = []
        for message in self.messages():
            shown = [id(e) for e in message.embeds]
            hidden += [e for e in message.sent_embeds if id(e) not in shown]
        return hidden

    def invalid_requests(self) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.invalid]

    def violations(self) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.violation]

    def rate_limited(self, scope: str | None = None) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.status == 429 and scope in (None, r.scope)]

    def most_429s_in_one_window(self) -> int:
        """The most 429s met in one limit window: a bucket window of one webhook, a channel
        window (rolling) of one channel, or a global wait."""
        with self.lock:
            user = Counter((r.webhook_id, r.window) for r in self.rate_limited("user"))
            most = max(user.values(), default=0)
            shared: dict[str, list[float]] = defaultdict(list)
            for r in self.rate_limited("shared"):
                shared[self.webhooks[r.webhook_id].channel_id].append(r.at)
            for times in shared.values():
                for n, start in enumerate(times):
                    inside = [t for t in times[n:] if t < start + self.channel_window]
                    most = max(most, len(inside))
            glob = self.rate_limited("global")
            for n, first in enumerate(glob):
                end = first.at + (first.retry_after or 0)
                most = max(most, len([r for r in glob[n:] if r.at < end]))
            return most

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": len(self.requests),
                "statuses": dict(Counter(str(r.status) for r in self.requests)),
                "rate_limited": dict(Counter(r.scope for r in self.rate_limited())),
                "most_429s_in_one_window": self.most_429s_in_one_window(),
                "violations": len(self.violations()),
                "messages": len(self.messages()),
                "edits": len(self.edits()),
                "embeds": len(self.embeds()),
                "hidden_embeds": len(self.hidden_embeds()),
                "invalid_requests": len(self.invalid_requests()),
                "embeds_per_webhook": dict(
                    Counter(r.webhook_id for r in self.messages() for _ in r.embeds)
                ),
                "pings": sum(len(r.pings) for r in self.requests),
                "faults": dict(Counter(r.fault for r in self.requests if r.fault)),
                "limits": {
                    "bucket_limit": self.bucket_limit,
                    "bucket_window": self.bucket_window,
                    "channel_limit": self.channel_limit,
                    "channel_window": self.channel_window,
                },
            }

    def control(self, command: dict[str, Any]) -> None:
        """POST /_control, for a fake running as a subprocess."""
        action = command.get("action")
        if action == "fail_next":
            self.fail_next(
                command["kind"], times=command.get("times", 1), seconds=command.get("seconds")
            )
        elif action == "limit_globally":
            self.limit_globally(command.get("retry_after", 1.0))
        elif action == "throttle_next":
            self.throttle_next(command.get("retry_after", 1.0), times=command.get("times", 1))
        elif action == "ban":
            self.ban(command.get("seconds", 3600.0), body=command.get("body", "html"))
        elif action == "delete_webhook":
            self.delete_webhook(command["webhook_id"])
        elif action == "delete_message":
            self.delete_message(command["message_id"])
        elif action == "add_webhook":
            self.add_webhook(
                command["webhook_id"],
                command["token"],
                channel_id=command.get("channel_id", ""),
                forum=command.get("forum", False),
            )
        else:
            raise ValueError(f"unknown action {action!r}")

    def destination(
        self,
        name: str = "orders",
        *,
        webhook_id: str = "",
        channel_id: str = "",
        forum: bool = False,
        **fields: Any,
    ):
        """A Destination for a webhook registered on this server (a new one by default); its
        `thread_id`, if given, is a thread of the webhook's channel."""
        from notifications.models import Destination

        webhook_id, token = webhook_id or snowflake(), secrets.token_urlsafe(51)
        self.add_webhook(webhook_id, token, channel_id=channel_id, forum=forum)
        if fields.get("thread_id"):
            self.add_thread(webhook_id, fields["thread_id"])
        return Destination.objects.create(name=name, webhook_id=webhook_id, token=token, **fields)

    def webhook_url(self, destination, *, thread_id: str = "") -> str:
        """The URL Discord shows for the destination's webhook, as staff would paste it."""
        query = f"?thread_id={thread_id}" if thread_id else ""
        return (
            f"https://discord.com/api/webhooks/{destination.webhook_id}/{destination.token}{query}"
        )

    # Discord's side.

    def execute(
        self,
        webhook_id: str,
        token: str,
        body: Any,
        query: dict[str, list[str]],
        message_id: str = "",
    ):
        """What Discord answers: (status, JSON body, headers, fault or None). Called under the
        lock, at the moment the request arrives. With `message_id`, an edit of that message
        (the caller answers `finished_edit` once the answer is out)."""
        now = time.time()
        told = max(self.wait_until.get(webhook_id, 0.0), self.global_until)
        request = Request(
            at=now,
            webhook_id=webhook_id,
            status=0,
            body=body,
            told_to_wait_until=told,
            violation=now < told,
            thread_id=(query.get("thread_id") or [""])[0],
            pings=pings(body) if isinstance(body, dict) else [],
            method="PATCH" if message_id else "POST",
            target=message_id,
        )
        self.requests.append(request)
        self.arrived.notify_all()
        if message_id:
            request.overlapping = self.editing[message_id] > 0
            self.editing[message_id] += 1
        if now < self.banned_until:  # Cloudflare answers before Discord sees anything
            request.status, request.banned = (403 if self.ban_body == "403" else 429), True
            return (request.status, *self._ban_page(), None)
        status, answer, headers, fault = self._answer(request, token, now)
        request.status = 0 if fault and fault.kind in ("drop", "hang") else status
        if status == 200:
            request.message_id = answer["id"]
            posted = request.method == "POST"
            if posted and (query.get("wait") or [""])[0] != "true":  # posted, not returned
                request.status, answer = 204, b""
        return request.status, answer, headers, fault

    def finished_edit(self, message_id: str) -> None:
        with self.lock:
            self.editing[message_id] -= 1

    def _answer(self, request: Request, token: str, now: float):
        webhook = self.webhooks.get(request.webhook_id)
        if webhook is None and self.auto_register:
            webhook = self.webhooks[request.webhook_id] = Webhook(token, request.webhook_id)
        if webhook is None or webhook.deleted:
            return 404, {"message": "Unknown Webhook", "code": 10015}, {}, None
        if not secrets.compare_digest(token, webhook.token):
            return 401, {"message": "Invalid Webhook Token", "code": 50027}, {}, None
        fault = self.faults.popleft() if self.faults else self._random_fault()
        request.fault = fault.kind if fault else ""
        if fault and fault.kind != "slow":
            return (int(fault.kind) if fault.kind.isdigit() else 0), {}, {}, fault
        return (*self._post(request, webhook, now), fault)

    def _random_fault(self) -> Fault | None:
        """One draw per request that reached the webhook: a hang, a failure or nothing."""
        if not (self.fail_rate or self.hang_rate):
            return None
        draw = self.random.random()
        if draw < self.hang_rate:
            return Fault("hang", self.hang_seconds)
        if draw < self.hang_rate + self.fail_rate:
            return Fault(self.random.choice(FAILURES))
        return None

    def _ban_page(self) -> tuple[Any, dict[str, str]]:
        if self.ban_body == "json":
            message = (
                "You are being blocked from accessing our API temporarily due to exceeding our"
                " rate limits frequently."
            )
            return {"code": 0, "message": message}, {}
        code = b"1020" if self.ban_body == "403" else b"1015"
        page = b"<!DOCTYPE html><html><head><title>Access denied | discord.com used Cloudflare"
        page += b" to restrict access</title></head><body>error code: " + code + b"</body></html>"
        return page, {"Content-Type": "text/html; charset=UTF-8"}

    def _post(self, request: Request, webhook: Webhook, now: float):
        """Discord's limits, then its validation, then the message (posted or edited)."""
        headers, refusal = self._limits(request, webhook, now)
        if refusal:
            return refusal
        if problem := validation_errors(request.body):
            return 400, problem, headers
        if request.thread_id and self.threads.get(request.thread_id) != webhook.channel_id:
            return 404, {"message": "Unknown Channel", "code": 10003}, headers
        if request.method == "PATCH":
            return self._edit(request, webhook, now, headers)
        if webhook.forum and not request.thread_id:
            message = "Webhooks posted to forum channels must have a thread_name or thread_id"
            return 400, {"message": message, "code": 220001}, headers
        self.channels[webhook.channel_id].append(now)
        message = self._message(request, webhook)
        channel_id = request.thread_id or webhook.channel_id
        self.stored[message["id"]] = Message(
            message["id"], request.webhook_id, channel_id, request.body, now
        )
        return 200, message, headers

    def _edit(self, request: Request, webhook: Webhook, now: float, headers: dict[str, str]):
        """Only a message of this webhook, in the channel searched (the thread named, else
        the webhook's channel), is found; an hour-old one only so often."""
        message = self.stored.get(request.target)
        searched = request.thread_id or webhook.channel_id
        if (
            message is None
            or message.deleted
            or message.webhook_id != request.webhook_id
            or message.channel_id != searched
        ):
            return 404, {"message": "Unknown Message", "code": 10008}, headers
        if now - message.created > OLD_MESSAGE_AGE:
            edits = self.old_edits[searched]
            while edits and edits[0] <= now - self.old_edit_window:
                edits.popleft()
            if len(edits) >= self.old_edit_limit:
                status, body, headers = self._limited(
                    request, "user", edits[0] + self.old_edit_window - now, headers
                )
                body["code"] = 30046
                body["message"] = "Maximum number of edits to messages older than 1 hour reached."
                return status, body, headers
            edits.append(now)
        self.channels[webhook.channel_id].append(now)
        message.body = {**message.body, **request.body}
        message.edits += 1
        return 200, self._message_object(message), headers

    def _limits(self, request: Request, webhook: Webhook, now: float):
        """(the bucket's headers, a 429 answer or None): global, bucket, hidden channel."""
        if self.global_next and now >= self.global_until:
            self.global_until = now + self.global_next.popleft()
        if now < self.global_until:
            return {}, self._limited(request, "global", self.global_until - now, {})
        if self.throttles:
            bucket = self.buckets[request.webhook_id]
            if now >= bucket.started + self.bucket_window:
                bucket.started, bucket.used = now, 0
            remaining = self.bucket_limit - bucket.used
            headers = self._bucket_headers(request.webhook_id, remaining, bucket, now)
            return headers, self._limited(request, "user", self.throttles.popleft(), headers)
        headers = self._spend_bucket(request, now)
        if headers is None:
            bucket = self.buckets[request.webhook_id]
            headers = self._bucket_headers(request.webhook_id, 0, bucket, now)
            wait = bucket.started + self.bucket_window - now
            return headers, self._limited(request, "user", wait, headers)
        sent = self.channels[webhook.channel_id]
        while sent and sent[0] <= now - self.channel_window:
            sent.popleft()
        if len(sent) >= self.channel_limit:
            wait = sent[0] + self.channel_window - now
            return headers, self._limited(request, "shared", wait, headers)
        return headers, None

    def _spend_bucket(self, request: Request, now: float) -> dict[str, str] | None:
        """Count the request in its webhook's bucket; None when the bucket is empty."""
        bucket = self.buckets[request.webhook_id]
        if now >= bucket.started + self.bucket_window:
            bucket.started, bucket.used = now, 0
        request.window = bucket.started
        if bucket.used >= self.bucket_limit:
            return None
        bucket.used += 1
        remaining = self.bucket_limit - bucket.used
        headers = self._bucket_headers(request.webhook_id, remaining, bucket, now)
        if remaining == 0:
            self._tell_to_wait(request.webhook_id, now + float(headers["X-RateLimit-Reset-After"]))
        return headers

    def _bucket_headers(self, webhook_id: str, remaining: int, bucket: Bucket, now: float):
        reset = bucket.started + self.bucket_window
        return {
            "X-RateLimit-Limit": str(self.bucket_limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{_up(reset):.3f}",
            "X-RateLimit-Reset-After": f"{_up(reset - now):.3f}",
            "X-RateLimit-Bucket": hashlib.sha1(webhook_id.encode()).hexdigest()[:32],
        }

    def _limited(self, request: Request, scope: str, wait: float, headers: dict[str, str]):
        retry_after = _up(wait)
        request.scope, request.retry_after = scope, retry_after
        if scope == "global":
            headers = {**headers, "X-RateLimit-Global": "true"}
        else:
            self._tell_to_wait(request.webhook_id, request.at + retry_after)
        headers = {
            **headers,
            "X-RateLimit-Scope": scope,
            "Retry-After": str(math.ceil(retry_after)),
        }
        body = {
            "message": "You are being rate limited.",
            "retry_after": retry_after,
            "global": scope == "global",
        }
        return 429, body, headers

    def _tell_to_wait(self, webhook_id: str, until: float) -> None:
        self.wait_until[webhook_id] = max(self.wait_until.get(webhook_id, 0.0), until)

    def _message_object(self, message: Message) -> dict[str, Any]:
        return {
            "id": message.id,
            "type": 0,
            "content": message.body.get("content", ""),
            "channel_id": message.channel_id,
            "webhook_id": message.webhook_id,
            "embeds": message.body.get("embeds", []),
            "mentions": [],
            "mention_everyone": False,
            "timestamp": datetime.fromtimestamp(message.created).astimezone().isoformat(),
            "edited_timestamp": datetime.now().astimezone().isoformat(),
        }

    def _message(self, request: Request, webhook: Webhook) -> dict[str, Any]:
        return {
            "id": snowflake(),
            "type": 0,
            "content": request.body.get("content", ""),
            "channel_id": request.thread_id or webhook.channel_id,
            "webhook_id": request.webhook_id,
            "embeds": request.body.get("embeds", []),
            "mentions": [],
            "mention_everyone": False,
            "timestamp": datetime.now().astimezone().isoformat(),
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the recorded requests say enough (and the path holds the token)

    def do_GET(self) -> None:
        fake: FakeDiscord = self.server.fake
        if urlsplit(self.path).path == "/_stats":
            query = parse_qs(urlsplit(self.path).query)
            stats = fake.stats()
            if query.get("full"):
                with fake.lock:
                    stats["log"] = [asdict(r) for r in fake.requests]
            return self._send(200, stats)
        self._send(404, {"message": "404: Not Found", "code": 0})

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"null")
        except ValueError:
            return raw.decode(errors="replace")

    def do_PATCH(self) -> None:
        fake: FakeDiscord = self.server.fake
        url = urlsplit(self.path)
        body = self._body()
        match = MESSAGE_PATH.match(url.path)
        if not match:
            return self._send(404, {"message": "404: Not Found", "code": 0})
        webhook_id, token, message_id = match.groups()
        with fake.lock:
            answer = fake.execute(webhook_id, token, body, parse_qs(url.query), message_id)
        try:
            self._answer(*answer)
        finally:
            fake.finished_edit(message_id)

    def do_POST(self) -> None:
        fake: FakeDiscord = self.server.fake
        url = urlsplit(self.path)
        body = self._body()
        if url.path == "/_control":
            try:
                fake.control(body)
            except (AssertionError, AttributeError, KeyError, ValueError) as error:
                return self._send(400, {"message": f"bad control command: {error!r}"})
            return self._send(200, {"ok": True})
        match = WEBHOOK_PATH.match(url.path)
        if not match:
            return self._send(404, {"message": "404: Not Found", "code": 0})
        with fake.lock:
            answer = fake.execute(*match.groups(), body, parse_qs(url.query))
        self._answer(*answer)

    def _answer(self, status: int, answer: Any, headers: dict[str, str], fault) -> None:
        fake: FakeDiscord = self.server.fake
        if fault and fault.kind in ("hang", "slow"):
            fake.released.wait(fault.seconds)
        if fault and fault.kind in ("drop", "hang"):
            self.close_connection = True
            return
        if fault and fault.kind == "502":
            html = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            return self._send(502, html, {"Content-Type": "text/html"})
        if fault and fault.kind == "500":
            return self._send(500, {"message": "500: Internal Server Error", "code": 0})
        self._send(status, answer, headers)

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
        try:
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(data))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bucket-limit", type=int, default=5)
    parser.add_argument("--bucket-window", type=float, default=2.0)
    parser.add_argument("--channel-limit", type=int, default=30)
    parser.add_argument("--channel-window", type=float, default=60.0)
    parser.add_argument("--hang-seconds", type=float, default=15.0)
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of 500/502/drops")
    parser.add_argument("--hang-rate", type=float, default=0.0, help="share of hanging requests")
    parser.add_argument("--seed", type=int, help="for the random faults (default: any)")
    args = parser.parse_args()
    fake = FakeDiscord(
        bucket_limit=args.bucket_limit,
        bucket_window=args.bucket_window,
        channel_limit=args.channel_limit,
        channel_window=args.channel_window,
        hang_seconds=args.hang_seconds,
        fail_rate=args.fail_rate,
        hang_rate=args.hang_rate,
        seed=args.seed,
        host=args.host,
        port=args.port,
    )
    print(f"fake Discord at {fake.url} (stats: GET /_stats)", flush=True)
    try:
        fake.server.serve_forever(0.05)
    except KeyboardInterrupt:
        pass
    finally:
        fake.released.set()
        fake.server.server_close()


if __name__ == "__main__":
    main()
