from licenses.emails import send_key_emails
from workers.command import WorkerCommand


class Command(WorkerCommand):
    help = "Send the emails with license keys (queued when orders complete or staff resend)."
    default_interval = 2.0

    def step(self) -> int:
        return send_key_emails(limit=1)

    def report(self, done: int) -> str:
        return f"sent {done} key email(s)"
