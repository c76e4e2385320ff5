"""What each worker has to do, as the app that owns the work declares it.

/healthz and the /mgmt overview read the workers' backlogs here, so that neither imports the
apps whose work they show: notifications declares the Discord outbox, licenses the key emails,
orders the test gateway's delayed events (each in its AppConfig.ready()). A worker declared here
is expected to beat (workers.command) whenever `needed()` says this configuration runs it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Queue:
    kind: str  # the worker's management command, e.g. "deliver_notifications"
    backlog: Callable[[datetime], int]  # items due now
    place: int  # where /healthz and the overview list it, lowest first
    needed: Callable[[], bool]  # whether this configuration runs the worker
    # Items given up on, which wait for staff, and the name /healthz shows their count under.
    dead: Callable[[], int] | None = None
    dead_as: str = ""


@dataclass(frozen=True)
class Report:
    """A part of /healthz of its own (e.g. Discord's standing), with what makes it unhealthy."""

    name: str
    read: Callable[[datetime], dict[str, Any]]
    healthy: Callable[[dict[str, Any]], bool]


_queues: dict[str, Queue] = {}
_reports: dict[str, Report] = {}


def declare(
    kind: str,
    *,
    backlog: Callable[[datetime], int],
    place: int,
    needed: Callable[[], bool] = lambda: True,
    dead: Callable[[], int] | None = None,
    dead_as: str = "",
) -> None:
    """Declare the worker `kind`'s queue (again: the latest declaration stands)."""
    if bool(dead_as) != (dead is not None):
        raise ValueError("dead items and the name /healthz shows them under go together")
    _queues[kind] = Queue(kind, backlog, place, needed, dead, dead_as)


def declare_report(
    name: str, read: Callable[[datetime], dict[str, Any]], *, healthy: Callable[[dict], bool]
) -> None:
    _reports[name] = Report(name, read, healthy)


def expected() -> list[Queue]:
    """The queues whose workers this configuration runs, in their places."""
    return sorted((q for q in _queues.values() if q.needed()), key=lambda q: q.place)


def declared() -> list[Queue]:
    """Every declared queue, needed here or not (their dead items count all the same)."""
    return sorted(_queues.values(), key=lambda q: q.place)


def reports() -> list[Report]:
    return list(_reports.values())
