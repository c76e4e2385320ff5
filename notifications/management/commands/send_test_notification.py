from django.core.management.base import BaseCommand, CommandError

from notifications.destinations import probe_embed
from notifications.events import Event
from notifications.models import Delivery, Destination
from notifications.outbox import enqueue, sync_settings_destination
from notifications.worker import deliver_due


class Command(BaseCommand):
    help = (
        "Send a test message to one destination (or all enabled ones) and report Discord's answer."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--destination", help="the destination's name (default: all enabled)")

    def handle(self, *args, destination: str | None, **options) -> None:
        sync_settings_destination()
        targets = Destination.objects.filter(enabled=True)
        if destination:
            targets = Destination.objects.filter(name=destination)
            if not targets.exists():
                raise CommandError(f"No destination named {destination!r}.")
            if not targets[0].enabled:  # the worker never sends to it: say why, not "sent"
                reason = targets[0].disabled_reason or "enable it in the admin first"
                raise CommandError(f"{destination} is disabled: {reason}")
        if not targets.exists():
            raise CommandError(
                "No enabled destination: set DISCORD_WEBHOOK_URL or add one in the admin."
            )
        targets = list(targets.values_list("pk", flat=True))
        notification = enqueue(Event.TEST, probe_embed(), only=targets)
        deliver_due("send_test_notification", max_messages=50)
        failed = False
        for delivery in Delivery.objects.filter(notification=notification).select_related(
            "destination"
        ):
            if delivery.status == "sent":
                self.stdout.write(f"{delivery.destination}: sent (message {delivery.message_id})")
            else:
                failed = True
                reasons = [delivery.destination.disabled_reason, delivery.last_error]
                reason = " ".join(filter(None, reasons)) or "waiting (rate limit)"
                self.stdout.write(f"{delivery.destination}: {delivery.status}: {reason}")
        if failed:
            raise CommandError("Not every destination got the test message.")
