from orders.gateways import is_offline
from orders.offline_events import deliver_due_events
from workers.command import WorkerCommand


class Command(WorkerCommand):
    help = "Offline test gateway: deliver its due events (delayed payments) to the webhook handler."

    def ready(self) -> bool:
        if not is_offline():
            self.stderr.write("Stripe is configured: the offline test gateway is off.")
        return is_offline()

    def step(self) -> int:
        return deliver_due_events()

    def report(self, done: int) -> str:
        return f"delivered {done} test event(s)"
