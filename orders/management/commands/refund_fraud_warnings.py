from django.conf import settings

from orders.fraud_refunds import refund_due_warnings
from workers.command import WorkerCommand


class Command(WorkerCommand):
    help = (
        "STRIPE_REFUND_ON_FRAUD_WARNING: refund in full the orders Stripe Radar's actionable "
        "early fraud warnings name, through the shop's refund command."
    )
    default_interval = 5.0

    def ready(self) -> bool:
        if not settings.STRIPE_REFUND_ON_FRAUD_WARNING:
            self.stderr.write("STRIPE_REFUND_ON_FRAUD_WARNING is off: nothing to refund.")
        return settings.STRIPE_REFUND_ON_FRAUD_WARNING

    def step(self) -> int:
        return refund_due_warnings()

    def report(self, done: int) -> str:
        return f"settled {done} fraud warning refund(s)"
