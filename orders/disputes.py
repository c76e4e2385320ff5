"""A dispute's stage, so that it only moves forward whatever order Stripe's events arrive in.

Stages: open (an inquiry or a chargeback) → closed → appeal → closed after the appeal. An inquiry
escalated to a chargeback moves forward within the open stage. `won` and `lost` appear both before
and after an appeal, so a closing status is read against the earliest appeal seen: a close at or
after that time is the appeal's outcome. A status is kept with the Stripe `created` of the event
that told it; the current one is the greatest (stage, rank, created) seen, which is the same for
any arrival order of the same events.
"""

from .statuses import DisputeStatus as S

OPEN, CLOSED, APPEAL, CLOSED_AFTER_APPEAL = 0, 1, 2, 3
# Forward moves within a stage: an inquiry, under review, escalated, then under review again.
OPEN_RANK = {
    S.WARNING_NEEDS_RESPONSE: 0,
    S.WARNING_UNDER_REVIEW: 1,
    S.NEEDS_RESPONSE: 2,
    S.UNDER_REVIEW: 3,
}
APPEAL_RANK = {S.APPEAL_NEEDS_RESPONSE: 0, S.APPEAL_UNDER_REVIEW: 1}
CLOSING = {S.WARNING_CLOSED, S.WON, S.LOST, S.PREVENTED}
INQUIRY = {S.WARNING_NEEDS_RESPONSE, S.WARNING_UNDER_REVIEW, S.WARNING_CLOSED}
NEEDS_RESPONSE = {S.WARNING_NEEDS_RESPONSE, S.NEEDS_RESPONSE, S.APPEAL_NEEDS_RESPONSE}
# In the shop's favour: the money stays (an inquiry closed, a chargeback won or prevented).
FAVOURABLE = {S.WARNING_CLOSED, S.WON, S.PREVENTED}

Position = tuple[int, int, int, str]


def stage_of(status: str, created: int, appealed_at: int | None) -> int:
    if status in OPEN_RANK:
        return OPEN
    if status in APPEAL_RANK:
        return APPEAL
    return CLOSED_AFTER_APPEAL if appealed_at is not None and appealed_at <= created else CLOSED


def position(status: str, created: int, appealed_at: int | None) -> Position:
    """What orders the statuses Stripe told: the greatest is the dispute's current one."""
    rank = OPEN_RANK.get(status, APPEAL_RANK.get(status, 0))
    return stage_of(status, created, appealed_at), rank, created, status


def is_open(status: str) -> bool:
    return status in OPEN_RANK or status in APPEAL_RANK


def change_between(before: tuple[int, str] | None, after: tuple[int, str]) -> list[str]:
    """What people are told when a dispute moves from (stage, status) `before` to `after`:
    opened, escalated, closed or appealed (a dispute first seen closed was opened all the same)."""
    stage, status = after
    if before is None:
        if stage == APPEAL:
            return ["appealed"]
        return ["opened", "closed"] if stage in (CLOSED, CLOSED_AFTER_APPEAL) else ["opened"]
    old_stage, old_status = before
    if stage == old_stage and status == old_status:
        return []
    if stage == OPEN:
        escalated = old_status in INQUIRY and status not in INQUIRY
        return ["escalated"] if escalated else []
    if stage == APPEAL:
        return ["appealed"] if old_stage != APPEAL else []
    # A closing status re-read as the appeal's outcome (its appeal arrived late) was told already.
    return ["closed"] if status != old_status or old_stage in (OPEN, APPEAL) else []


def takes_money(status: str) -> bool:
    """A chargeback holds the disputed amount back from the shop while open, under appeal, and
    for good once lost; an inquiry never does, and a won or prevented dispute gave it back."""
    return status not in INQUIRY and status not in FAVOURABLE


def blocks_refunds(status: str) -> bool:
    """Stripe refuses a refund while a chargeback is open (`charge_disputed`), and after it is
    lost the money is already back with the customer; during an inquiry it allows one."""
    return takes_money(status)
