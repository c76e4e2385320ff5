"""The polling loop every worker command shares: one item at a time, a heartbeat, a clean stop.

A command says what one step of its work is (`step()`, returning how many items it handled);
this class runs it: `--once` repeats it until nothing is left and exits, otherwise it polls every
`--interval` seconds while idle. SIGTERM and SIGINT let the item in flight finish (and be
recorded), then the loop ends. While the database is away, the loop waits for it
(`when_database_answers`) instead of dying.
"""

import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import TypeVar

from django.core.management.base import BaseCommand
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.utils import timezone

from .models import Heartbeat

log = logging.getLogger(__name__)
BEAT_EVERY = 5.0
# Seconds between tries while the database is away: doubling, capped so that a worker is back
# within a few seconds of the database.
FIRST_WAIT, MAX_WAIT = 0.5, 5.0
Result = TypeVar("Result")


def when_database_answers(
    call: Callable[[], Result], *, stopping: Callable[[], bool] = lambda: False
) -> Result | None:
    """`call()`, tried again while the database is unreachable (PostgreSQL restarting, a network
    cut): the broken connection is closed, the wait doubles up to MAX_WAIT, and the outage is
    logged once when it starts and once when it ends. None if `stopping()` turns true meanwhile.
    Inside a transaction the error goes to whoever opened it: only they know what to redo."""
    outage, wait = None, FIRST_WAIT
    while True:
        try:
            result = call()
        except (OperationalError, InterfaceError) as error:
            if connection.in_atomic_block:
                raise
            with contextlib.suppress(DatabaseError):
                connection.close()  # the next query opens a fresh connection
            if outage is None:
                outage = time.monotonic()
                log.warning("database unreachable (%s): waiting for it", type(error).__name__)
            if stopping():
                return None
            time.sleep(wait)
            wait = min(2 * wait, MAX_WAIT)
            continue
        if outage is not None:
            log.warning("database answers again after %.1f s", time.monotonic() - outage)
        return result


def beat(kind: str, name: str) -> None:
    Heartbeat.objects.update_or_create(
        name=name, defaults={"kind": kind, "seen_at": timezone.now()}
    )


class WorkerCommand(BaseCommand):
    default_interval = 1.0

    def step(self) -> int:
        """Handle what is due now (one item, or a few that belong together); 0 when idle."""
        raise NotImplementedError

    def report(self, done: int) -> str:
        return f"{self.kind}: {done} done"

    def ready(self) -> bool:
        """Whether this worker has anything to do in this configuration."""
        return True

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="Do what is due now, then exit.")
        parser.add_argument(
            "--interval",
            type=float,
            default=self.default_interval,
            help=f"Seconds between polls while idle (default {self.default_interval}).",
        )

    def stopped(self) -> bool:
        return self.stopping

    @property
    def kind(self) -> str:
        return self.__module__.rsplit(".", 1)[-1]

    def handle(self, *args, once: bool, interval: float, **options) -> None:
        if not self.ready():
            return
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        if once:
            done = 0
            while handled := when_database_answers(self.step):
                done += handled
            self.stdout.write(self.report(done))
            return
        self.stopping = False

        def stop(*_) -> None:
            self.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"{self.kind} worker {self.name} started")
        last_beat = -BEAT_EVERY
        while not self.stopping:
            if time.monotonic() - last_beat >= BEAT_EVERY:
                when_database_answers(lambda: beat(self.kind, self.name), stopping=self.stopped)
                last_beat = time.monotonic()
            if not when_database_answers(self.step, stopping=self.stopped) and not self.stopping:
                time.sleep(interval)
        self.stdout.write(f"{self.kind} worker {self.name} stopped at {timezone.now():%H:%M:%S}")
