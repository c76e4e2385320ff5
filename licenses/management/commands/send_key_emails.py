import signal
import time

from django.core.management.base import BaseCommand

from licenses.emails import send_key_emails


class Command(BaseCommand):
    help = "Send the emails with license keys (queued when orders complete or staff resend)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="Send what is due, then exit.")
        parser.add_argument("--interval", type=float, default=2.0)

    def handle(self, *args, once: bool, interval: float, **options) -> None:
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        while not stopping:
            sent = send_key_emails()
            if sent:
                self.stdout.write(f"sent {sent} key email(s)")
            if once:
                return
            time.sleep(interval)
