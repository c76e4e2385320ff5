import os
import signal
import socket
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from notifications.worker import beat, deliver_due, deliver_one


class Command(BaseCommand):
    help = "Deliver Discord notifications from the outbox (several workers may run at once)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--once", action="store_true", help="Deliver what may be sent now, then exit."
        )

    def handle(self, *args, once: bool, **options) -> None:
        worker = f"{socket.gethostname()}:{os.getpid()}"
        if once:
            self.stdout.write(f"sent {deliver_due(worker)} message(s)")
            return
        stopping = []
        # SIGTERM lets the current send finish and be recorded, then the loop ends.
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
        last_beat = 0.0
        self.stdout.write(f"delivery worker {worker} started")
        while not stopping:
            if time.monotonic() - last_beat > 5:
                beat(worker)
                last_beat = time.monotonic()
            if not deliver_one(worker):
                time.sleep(settings.DISCORD_POLL_INTERVAL)
        self.stdout.write(f"delivery worker {worker} stopped at {timezone.now():%H:%M:%S}")
