from licenses.emails import send_key_emails
from workers.command import WorkerCommand


class Command(WorkerCommand):
    help = "Send the emails with license keys (queued when orders complete or staff resend)."
    default_interval = 2.0

    def step(self) -> int:
        # One email per step: SIGTERM is heard between emails, and a failure returns 0, so the
        # loop rests for --interval before the next try instead of hammering a dead server.
        return send_key_emails(limit=1)

    def report(self, done: int) -> str:
        return f"sent {done} key email(s)"
