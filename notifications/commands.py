"""What staff do to Discord messages and destinations, as commands (audit.commands): send a
message again, queue a test message, switch a destination on or off."""

from audit.commands import Command

from .destinations import queue_test, set_enabled
from .models import Delivery, DeliveryStatus, Destination
from .outbox import resend


class Resend(Command):
    """A dead (or sent) message is queued again, as new, for its destination."""

    name, label, permission = (
        "notifications.resend",
        "Send again",
        "notifications.resend_notification",
    )
    model = Delivery

    def lock(self, delivery: Delivery) -> Delivery:
        # The row alone: FOR UPDATE cannot reach the outer join to a notification's order.
        return Delivery.objects.select_for_update().get(pk=delivery.pk)

    def order_of(self, delivery: Delivery):
        return delivery.notification.order

    def target_of(self, delivery: Delivery) -> str:
        return f"delivery {delivery.pk} to {delivery.destination}"

    def applies(self, delivery: Delivery) -> bool:
        return delivery.status != DeliveryStatus.PENDING

    def why_not(self, delivery: Delivery, *, by) -> str | None:
        if delivery.status == DeliveryStatus.PENDING:
            return "This message is already waiting to be sent."
        return None

    def act(self, delivery: Delivery, *, by) -> None:
        resend(Delivery.objects.filter(pk=delivery.pk))


class DestinationCommand(Command):
    model = Destination
    permission = "notifications.change_destination"

    def order_of(self, destination: Destination) -> None:
        return None

    def target_of(self, destination: Destination) -> str:
        return str(destination)


class TestDestination(DestinationCommand):
    """A test message for the worker to send (nothing is sent from a web request)."""

    name, label = "notifications.test_destination", "Send a test message"

    def why_not(self, destination: Destination, *, by) -> str | None:
        if not destination.enabled:
            return f"{destination} is disabled: {destination.disabled_reason or 'enable it first'}"
        return None

    def act(self, destination: Destination, *, by) -> None:
        queue_test(destination, sent_by=f"{by.email} on /mgmt")


class Switch(DestinationCommand):
    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.name = f"notifications.{'enable' if enabled else 'disable'}_destination"
        self.label = "Enable" if enabled else "Disable"

    def applies(self, destination: Destination) -> bool:
        return destination.enabled != self.enabled

    def why_not(self, destination: Destination, *, by) -> str | None:
        if destination.enabled == self.enabled:
            return f"{destination} is {'enabled' if self.enabled else 'disabled'} already."
        return None

    def act(self, destination: Destination, *, by) -> None:
        set_enabled(destination, enabled=self.enabled)


resend_delivery = Resend()
test_destination = TestDestination()
enable_destination = Switch(enabled=True)
disable_destination = Switch(enabled=False)
