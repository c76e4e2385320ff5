"""Pruning what is past its age, in small batches: each batch is one short transaction over at
most BATCH rows, so the shop keeps running while it prunes and no lock is held for long.

Each app says what of its own may go (a `Prunable`); `manage.py prune` runs them all.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet

BATCH = 1000


@dataclass(frozen=True)
class Prunable:
    name: str  # "notifications", as the summary line says it
    verb: str  # "deleted", "dropped"
    due: Callable[[datetime], QuerySet]  # the rows past the age (a cutoff) that may go
    prune: Callable[[QuerySet], int]  # done to one batch of them; returns how many


def delete_rows(rows: QuerySet) -> int:
    """Delete the rows (and what cascades with them); how many of the rows' own model went."""
    return rows.delete()[1].get(rows.model._meta.label, 0)


def prune_in_batches(
    prunable: Prunable, cutoff: datetime, *, done: Callable[[int], None] = lambda n: None
) -> int:
    """Walk the due rows by primary key, BATCH at a time. Each batch is pruned with the due
    condition asked again inside its transaction: a row that changed meanwhile (a notification
    resent by staff) is left alone."""
    total, last = 0, None
    while True:
        due = prunable.due(cutoff).order_by("pk")
        ids = list(
            (due if last is None else due.filter(pk__gt=last)).values_list("pk", flat=True)[:BATCH]
        )
        if not ids:
            return total
        with transaction.atomic():
            total += prunable.prune(prunable.due(cutoff).filter(pk__in=ids))
        done(len(ids))
        last = ids[-1]
