import time

from licenses.emails import queue_expiry_reminders, send_key_emails
from workers.command import WorkerCommand

# Reminders are about days: looking for licenses that expire soon once a minute is plenty.
REMINDERS_EVERY = 60.0


class Command(WorkerCommand):
    help = (
        "Send the emails with license keys (queued when orders complete or staff resend) and the"
        " reminders before a license expires."
    )
    default_interval = 2.0
    reminders_checked_at = float("-inf")

    def step(self) -> int:
        if time.monotonic() - self.reminders_checked_at >= REMINDERS_EVERY:
            self.reminders_checked_at = time.monotonic()
            queue_expiry_reminders()
        # One email per step: SIGTERM is heard between emails, and a failure returns 0, so the
        # loop rests for --interval before the next try instead of hammering a dead server.
        return send_key_emails(limit=1)

    def report(self, done: int) -> str:
        return f"sent {done} key email(s)"
