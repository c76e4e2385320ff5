"""The polling loop every worker command shares: one item at a time, a heartbeat, a clean stop.

A command says what one step of its work is (`step()`, returning how many items it handled);
this class runs it: `--once` repeats it until nothing is left and exits, otherwise it polls every
`--interval` seconds while idle. SIGTERM and SIGINT let the item in flight finish (and be
recorded), then the loop ends.
"""

import os
import signal
import socket
import time

from django.core.management.base import BaseCommand
from django.utils import timezone

from .models import Heartbeat

BEAT_EVERY = 5.0


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

    @property
    def kind(self) -> str:
        return self.__module__.rsplit(".", 1)[-1]

    def handle(self, *args, once: bool, interval: float, **options) -> None:
        if not self.ready():
            return
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        if once:
            done = 0
            while handled := self.step():
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
                beat(self.kind, self.name)
                last_beat = time.monotonic()
            if not self.step() and not self.stopping:
                time.sleep(interval)
        self.stdout.write(f"{self.kind} worker {self.name} stopped at {timezone.now():%H:%M:%S}")
