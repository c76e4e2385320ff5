"""The delivery worker: claims a destination, sends its oldest messages, records the answer.

Several workers on several machines can run against one PostgreSQL: a worker leases a whole
destination (row lock with SKIP LOCKED, then a lease time), so one destination's messages go out
in order and never twice at once. Rate-limit state lives on the rows, shared by all workers. The
database connection is closed before each request to Discord, so a slow Discord holds no
connection. A crash between the send and the record leaves the rows pending: after the lease
they are sent again (at most one duplicate, never a loss). What Discord limits per address (its
global limit, Cloudflare bans, invalid requests) holds every destination: see ip_limits. A
destination in compact mode edits one message per order instead of posting each event: see
compact; its edits are claimed, limited and recorded as posts are.
"""

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from workers.command import when_database_answers

from . import compact, ip_limits
from .discord import Answer, edit_webhook_message, execute_webhook
from .embeds import MESSAGE_TOTAL, embed_size, fallback_embed, for_message
from .models import Delivery, DeliveryAttempt, DeliveryStatus, Destination

log = logging.getLogger(__name__)
MAX_BATCH = 10
LEASE = timedelta(seconds=60)


@dataclass
class Claim:
    destination: Destination
    deliveries: list[Delivery]
    during_ban: bool = False  # a Cloudflare ban episode was on when this was claimed
    order_message: compact.OrderPlan | None = None  # compact mode: the order's one message

    @property
    def editing(self) -> bool:
        return bool(self.order_message and self.order_message.edit_id)

    def payload(self) -> dict:
        if self.order_message:
            embed = self.order_message.embed
            refused = any(d.use_fallback for d in self.deliveries)
            embeds = [fallback_embed(embed) if refused else embed]
        else:
            embeds = [
                fallback_embed(d.notification.embed) if d.use_fallback else d.notification.embed
                for d in self.deliveries
            ]
        # An edit states allowed_mentions again: without them Discord parses it with its
        # default allowances, whatever the post said. It takes no username (not a parameter of
        # "Edit Webhook Message").
        payload = {"embeds": for_message(embeds), "allowed_mentions": {"parse": []}}
        if self.destination.username and not self.editing:
            payload["username"] = self.destination.username
        return payload


def _ts(value: datetime) -> float:
    return value.timestamp()


def _skip_locked() -> dict:
    # NO KEY UPDATE: the webhook's outbox inserts (which take KEY SHARE on the destination through
    # the foreign key) never wait for a worker.
    if connection.features.has_select_for_update_skip_locked:
        return {"skip_locked": True, "no_key": True}
    return {}


def claim(worker: str) -> Claim | None:
    """Lease the next destination that may send now, with its next message's deliveries."""
    now = timezone.now()
    with transaction.atomic():
        limit = ip_limits.current()
        if limit and limit.blocked_until and limit.blocked_until > now:
            return None
        backlog = Delivery.objects.filter(destination=OuterRef("pk"), status=DeliveryStatus.PENDING)
        ready = (
            Destination.objects.filter(Exists(backlog), enabled=True)
            .filter(Q(lease_until=None) | Q(lease_until__lt=now))
            .filter(Q(blocked_until=None) | Q(blocked_until__lte=now))
            .order_by("last_success_at", "id")
        )
        for destination in ready.select_for_update(**_skip_locked())[:5]:
            deliveries = _next_message(destination, now)
            if deliveries:
                destination.lease_owner, destination.lease_until = worker, now + LEASE
                destination.save(update_fields=["lease_owner", "lease_until"])
                return Claim(
                    destination,
                    deliveries,
                    during_ban=bool(limit and limit.banned_since),
                    order_message=compact.plan(destination, deliveries),
                )
    return None


def _channel_sends(destination: Destination, now: datetime) -> list[float]:
    """When the channel's recent messages went out, from every destination that posts to it."""
    sends = list(destination.recent_sends)
    if destination.channel_id:
        others = Destination.objects.filter(channel_id=destination.channel_id).exclude(
            pk=destination.pk
        )
        for other in others.values_list("recent_sends", flat=True):
            sends += other
    cutoff = _ts(now) - settings.DISCORD_CHANNEL_WINDOW
    return sorted(t for t in sends if t > cutoff)


def _next_message(destination: Destination, now: datetime) -> list[Delivery]:
    """The oldest pending deliveries that fit one message, or [] (and a wait) if it must not send."""
    window, limit = settings.DISCORD_CHANNEL_WINDOW, settings.DISCORD_CHANNEL_LIMIT
    recent = _channel_sends(destination, now)
    if len(recent) >= limit:
        # Discord's hidden per-channel limit: wait until enough sends leave the window.
        leaves = recent[len(recent) - limit] + window
        destination.blocked_until = datetime.fromtimestamp(leaves, tz=now.tzinfo)
        destination.save(update_fields=["blocked_until"])
        return []
    rows = list(
        destination.deliveries.filter(status=DeliveryStatus.PENDING)
        .select_related("notification")
        .order_by("id")[:MAX_BATCH]
    )
    head = rows[0]
    if head.next_attempt_at and head.next_attempt_at > now:
        destination.blocked_until = head.next_attempt_at  # messages go out in order
        destination.save(update_fields=["blocked_until"])
        return []
    if compact.folds(destination, head):
        return compact.order_deliveries(destination, head)
    # Sizes as a message carries the embeds (links moved into descriptions count); a batch is
    # always a prefix of `rows`, shaped alike.
    sizes = [embed_size(e) for e in for_message([r.notification.embed for r in rows])]
    batch, size = [head], sizes[0]
    if not (head.solo or head.use_fallback):
        for row, row_size in zip(rows[1:], sizes[1:], strict=True):
            size += row_size
            waiting = row.next_attempt_at and row.next_attempt_at > now
            if row.solo or row.use_fallback or waiting or size > MESSAGE_TOTAL:
                break
            if compact.folds(destination, row):  # goes with its order's message
                break
            batch.append(row)
    return batch


def send(claim: Claim) -> Answer:
    if not connection.in_atomic_block:
        connection.close()  # no database connection is held while Discord answers
    destination = claim.destination
    if claim.editing:
        return edit_webhook_message(
            settings.DISCORD_API_BASE,
            destination.webhook_id,
            destination.token,
            claim.order_message.edit_id,
            claim.payload(),
            thread_id=destination.thread_id,
            timeout=settings.DISCORD_TIMEOUT,
        )
    return execute_webhook(
        settings.DISCORD_API_BASE,
        destination.webhook_id,
        destination.token,
        claim.payload(),
        thread_id=destination.thread_id,
        timeout=settings.DISCORD_TIMEOUT,
    )


@transaction.atomic
def record(claim: Claim, answer: Answer) -> None:
    """Apply Discord's answer to the deliveries and to the destination's shared state."""
    now = timezone.now()
    destination = Destination.objects.select_for_update(no_key=True).get(pk=claim.destination.pk)
    rows = list(
        Delivery.objects.select_for_update().filter(pk__in=[d.pk for d in claim.deliveries])
    )
    jitter = random.uniform(0.5, 1.0)  # one per answer: a failed message is retried whole
    for row in rows:
        if row.status != DeliveryStatus.PENDING:
            continue
        fallback = row.use_fallback  # what this attempt sent, before the answer changes it
        row.attempts += 1
        row.last_status, row.last_error = answer.status or None, answer.error
        if answer.ok:
            row.status, row.sent_at, row.message_id = DeliveryStatus.SENT, now, answer.message_id
            row.edited = claim.editing
        elif claim.editing and answer.message_gone:
            pass  # someone deleted the order's message: the next send posts a new one
        elif answer.destination_problem:
            pass  # the message was fine: it waits, as is, until staff fix the destination
        elif answer.banned:
            _after_ban(row, now)
        elif answer.permanent:
            # An order's message is one embed, however many events it carries.
            _after_refusal(row, batch=1 if claim.order_message else len(rows))
        elif answer.transient:
            _after_outage(row, now, jitter)
        row.save()
        DeliveryAttempt.objects.create(
            delivery=row,
            status_code=answer.status or None,
            error=answer.error,
            message_id=answer.message_id,
            batch_size=len(rows),
            fallback=fallback,
            edit=claim.editing,
        )
    if claim.order_message:
        compact.remember(claim.destination, claim.order_message, answer)
    _update_destination(destination, answer, now, rows)
    destination.lease_owner, destination.lease_until = "", None
    destination.save()
    ip_limits.note(answer, now, during_ban=claim.during_ban)
    _log_attempt(destination, answer, rows, editing=claim.editing)


def _outcome(answer: Answer, rows: list[Delivery], *, editing: bool) -> str:
    if answer.ok:
        return "edited" if editing else "sent"
    if editing and answer.message_gone:
        return "message_deleted"
    if any(row.status == DeliveryStatus.DEAD for row in rows):
        return "dead"
    if answer.banned:
        return "banned"
    if answer.rate_limited:
        return "rate_limited"
    if answer.destination_problem:
        return "destination_refused"
    return "refused" if answer.permanent else "retry"


def _log_attempt(
    destination: Destination, answer: Answer, rows: list[Delivery], *, editing: bool
) -> None:
    """One line per request to Discord: ids, destination name, answer and outcome; never the
    webhook URL (its token) nor the embeds (customer emails)."""
    outcome = _outcome(answer, rows, editing=editing)
    fields = {
        "destination": destination.name,
        "delivery_ids": [row.pk for row in rows],
        "notification_ids": [row.notification_id for row in rows],
        "status_code": answer.status,
        "batch_size": len(rows),
        "outcome": outcome,
    }
    # INFO whatever the answer: outages, limits and bans are told once per episode elsewhere.
    log.info(
        "discord delivery %s to %s: HTTP %s, %s embed(s), %s",
        fields["delivery_ids"],
        destination.name,
        answer.status or "none (network error or timeout)",
        len(rows),
        outcome,
        extra=fields,
    )


def _after_refusal(row: Delivery, *, batch: int) -> None:
    """400: never the same body twice. A batch is split; a single embed is sent once more as the
    minimal fallback; a refused fallback is dead."""
    if batch > 1:
        row.solo = True
    elif not row.use_fallback:
        row.use_fallback = True
    else:
        row.status = DeliveryStatus.DEAD


def _too_old(row: Delivery, now: datetime) -> bool:
    return now - row.created_at > timedelta(seconds=settings.DISCORD_MAX_AGE)


def _after_ban(row: Delivery, now: datetime) -> None:
    """A Cloudflare ban holds every destination (ip_limits); meanwhile the message ages."""
    if _too_old(row, now):
        row.status = DeliveryStatus.DEAD


def _after_outage(row: Delivery, now: datetime, jitter: float) -> None:
    """5xx, timeout, network: capped exponential backoff with jitter, bounded by age."""
    if _too_old(row, now):
        row.status = DeliveryStatus.DEAD
        return
    delay = min(
        settings.DISCORD_BACKOFF_CAP, settings.DISCORD_BACKOFF_BASE * 2 ** (row.attempts - 1)
    )
    row.next_attempt_at = now + timedelta(seconds=delay * jitter)


def _update_destination(destination: Destination, answer: Answer, now: datetime, rows) -> None:
    waits = [destination.blocked_until] if destination.blocked_until else []
    if answer.status and not answer.banned:  # Discord counted it towards the channel's limit
        window = settings.DISCORD_CHANNEL_WINDOW
        recent = [t for t in destination.recent_sends if t > _ts(now) - window]
        destination.recent_sends = [*recent, _ts(timezone.now())][-settings.DISCORD_CHANNEL_LIMIT :]
    if answer.ok:
        destination.last_success_at = now
        # ?wait=true answers with the message, which names the channel: destinations that post
        # to one channel share its hidden limit.
        destination.channel_id = str(answer.body.get("channel_id") or destination.channel_id)[:30]
    else:
        destination.last_error_at, destination.last_error = (
            now,
            answer.error or f"HTTP {answer.status}",
        )
    if answer.remaining == 0 and answer.reset_after is not None:
        waits.append(now + timedelta(seconds=answer.reset_after))
    if answer.rate_limited and not answer.address_wide:  # those hold all destinations: ip_limits
        wait = now + timedelta(seconds=answer.retry_after or 1)
        waits.append(wait)
        if answer.scope == "shared" and destination.channel_id:
            siblings = Destination.objects.filter(channel_id=destination.channel_id)
            siblings.exclude(pk=destination.pk).filter(
                Q(blocked_until=None) | Q(blocked_until__lt=wait)
            ).update(blocked_until=wait)
    if answer.transient:
        waits.append(min((r.next_attempt_at for r in rows if r.next_attempt_at), default=now))
    if answer.destination_problem:
        destination.enabled = False
        destination.disabled_reason = answer.destination_problem
    destination.blocked_until = max((w for w in waits if w), default=None)


def deliver_one(worker: str) -> bool:
    """One message: claim, send, record. False when nothing may be sent now."""
    claimed = claim(worker)
    if claimed is None:
        return False
    answer = send(claimed)
    # Discord may have posted it: a record lost to a database outage would send it again after
    # the lease, so the record waits for the database.
    when_database_answers(lambda: record(claimed, answer))
    return True


def deliver_due(worker: str = "inline", *, max_messages: int = 1000) -> int:
    sent = 0
    while sent < max_messages and deliver_one(worker):
        sent += 1
    return sent
