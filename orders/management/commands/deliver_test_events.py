import signal
import time

from django.core.management.base import BaseCommand

from orders.gateways import is_offline
from orders.gateways.offline import deliver_due_events


class Command(BaseCommand):
    help = "Offline test gateway: deliver its due events (delayed payments) to the webhook handler."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="Deliver what is due, then exit.")
        parser.add_argument("--interval", type=float, default=1.0)

    def handle(self, *args, once: bool, interval: float, **options) -> None:
        if not is_offline():
            self.stderr.write("Stripe is configured: the offline test gateway is off.")
            return
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        while not stopping:
            delivered = deliver_due_events()
            if delivered:
                self.stdout.write(f"delivered {delivered} test event(s)")
            if once:
                return
            time.sleep(interval)
