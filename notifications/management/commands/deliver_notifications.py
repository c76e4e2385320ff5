from django.conf import settings

from notifications.worker import deliver_one
from workers.command import WorkerCommand


class Command(WorkerCommand):
    help = "Deliver Discord notifications from the outbox (several workers may run at once)."
    default_interval = settings.DISCORD_POLL_INTERVAL

    def step(self) -> int:
        return int(deliver_one(self.name))

    def report(self, done: int) -> str:
        return f"sent {done} message(s)"
