"""What Discord limits per address rather than per webhook, shared by every worker through the
one GlobalRateLimit row: its global rate limit, Cloudflare's bans, and the invalid requests that
lead to a ban.

Discord bans an address for 10,000 invalid requests (401, 403, 429 not `shared`) in 10 minutes.
One destination makes few (401 and 403 switch it off, a 429 makes it wait), but they add up over
destinations, so no worker sends anything once INVALID_BUDGET were counted in the last 10
minutes. With W workers, each with at most one request in flight, that is at most
INVALID_BUDGET + 2 W invalid requests in any 10 minutes, whatever the number of destinations.
"""

import logging
import random
from datetime import datetime, timedelta

from .discord import Answer
from .models import GlobalRateLimit

logger = logging.getLogger(__name__)

INVALID_WINDOW = timedelta(minutes=10)
INVALID_BUDGET = 1000  # a tenth of Discord's threshold
# A ban lasts minutes to an hour: the worker asks again after 5 minutes, then less and less often.
BAN_WAIT, BAN_WAIT_CAP = timedelta(minutes=5), timedelta(hours=1)


def current() -> GlobalRateLimit | None:
    return GlobalRateLimit.objects.first()


def note(answer: Answer, now: datetime, *, during_ban: bool) -> None:
    """Apply Discord's answer to the address's shared state, in the caller's transaction.
    `during_ban`: the worker claimed while a ban episode was on."""
    ban_over = during_ban and bool(answer.status) and not answer.banned
    if not (answer.invalid or answer.address_wide or ban_over):
        return
    limit, _ = GlobalRateLimit.objects.select_for_update().get_or_create(pk=1)
    waits = [limit.blocked_until]
    if answer.banned:
        waits.append(_ban(limit, answer, now))
    elif answer.address_wide:  # Discord's own global limit
        waits.append(now + timedelta(seconds=answer.retry_after or 1))
    if ban_over and limit.banned_since:
        logger.info("Discord answers again, after a ban of %s.", _minutes(now - limit.banned_since))
        limit.banned_since, limit.bans = None, 0
    if answer.invalid:
        waits.append(_count_invalid(limit, now))
    limit.blocked_until = max((w for w in waits if w), default=None)
    limit.save()


def _ban(limit: GlobalRateLimit, answer: Answer, now: datetime) -> datetime:
    """A Cloudflare ban covers the address, so every destination waits; it is logged once per
    episode (until Discord answers again), not once per request."""
    if limit.banned_since is None:
        limit.banned_since, limit.bans = now, 0
    limit.bans += 1
    wait = min(BAN_WAIT_CAP, BAN_WAIT * 2 ** min(limit.bans - 1, 8))
    wait = max(wait * random.uniform(1.0, 1.25), timedelta(seconds=answer.retry_after or 0))
    if limit.bans == 1:
        logger.warning(
            "Discord refuses this server's requests (a Cloudflare ban: HTTP 429 without Discord's"
            " rate-limit body, or 403 without its JSON error). No notification is sent for %s, then the worker asks again, less"
            " and less often, until the ban ends; messages wait (up to DISCORD_MAX_AGE).",
            _minutes(wait),
        )
    return now + wait


def _count_invalid(limit: GlobalRateLimit, now: datetime) -> datetime | None:
    """Count an invalid request; when the last 10 minutes hold INVALID_BUDGET of them, the end
    of the pause that brings them under it."""
    cutoff = (now - INVALID_WINDOW).timestamp()
    recent = [t for t in limit.invalid_requests if t > cutoff] + [now.timestamp()]
    limit.invalid_requests = recent[-INVALID_BUDGET:]
    if len(recent) < INVALID_BUDGET:
        return None
    until = datetime.fromtimestamp(limit.invalid_requests[0], tz=now.tzinfo) + INVALID_WINDOW
    if not limit.blocked_until or limit.blocked_until <= now:
        logger.warning(
            "%d requests Discord counts as invalid (401, 403, 429) in 10 minutes: no notification"
            " is sent until %s, so that Discord does not ban this server.",
            len(recent),
            f"{until:%H:%M:%S}",
        )
    return until


def health(now: datetime) -> dict:
    """What /healthz tells of the address's standing with Discord: "banned" (every destination
    waits, for minutes), "paused" (Discord's global limit or the invalid-request budget), "ok"."""
    limit = current() or GlobalRateLimit()
    paused = limit.blocked_until if limit.blocked_until and limit.blocked_until > now else None
    cutoff = (now - INVALID_WINDOW).timestamp()
    return {
        "state": "banned" if limit.banned_since else ("paused" if paused else "ok"),
        "paused_until": paused.isoformat() if paused else None,
        "banned_since": limit.banned_since.isoformat() if limit.banned_since else None,
        "invalid_requests_10min": sum(t > cutoff for t in limit.invalid_requests),
    }


def _minutes(wait: timedelta) -> str:
    return f"{wait.total_seconds() / 60:.0f} min"
