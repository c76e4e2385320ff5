import re

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from .events import DEFAULT_EVENTS, Event


def validate_username(value: str) -> None:
    """Discord's rules for a webhook's username override."""
    if not 1 <= len(value) <= 80:
        raise ValidationError("Between 1 and 80 characters.")
    lowered = value.lower()
    if any(bad in lowered for bad in ("@", "#", ":", "```", "discord", "clyde")) or lowered in (
        "everyone",
        "here",
    ):
        raise ValidationError(
            'Discord refuses usernames with "@", "#", ":", "```", "discord", "clyde", or "everyone"/"here".'
        )


def default_events() -> list[str]:
    return list(DEFAULT_EVENTS)


class DestinationMode(models.TextChoices):
    EVERY_EVENT = "every_event", "every event"
    COMPACT = "compact", "compact (one message per order)"


class Destination(models.Model):
    """A Discord webhook. Its token is a secret: never shown, logged or put in an error."""

    name = models.CharField(max_length=100, unique=True)
    webhook_id = models.CharField(max_length=30)
    token = models.CharField(max_length=100)
    events = models.JSONField(default=default_events)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    thread_id = models.CharField(max_length=30, blank=True)
    username = models.CharField(max_length=80, blank=True, validators=[validate_username])
    mode = models.CharField(
        max_length=20, choices=DestinationMode, default=DestinationMode.EVERY_EVENT
    )
    from_settings = models.BooleanField(
        default=False, help_text="Kept in sync with DISCORD_WEBHOOK_URL."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Delivery state, shared by every worker through the database.
    channel_id = models.CharField(max_length=30, blank=True, help_text="Learned from Discord.")
    blocked_until = models.DateTimeField(null=True, blank=True)
    recent_sends = models.JSONField(default=list, blank=True)
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(mode__in=DestinationMode.values), name="destination_mode_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        unknown = set(self.events or []) - set(Event.values)
        if unknown:
            raise ValidationError({"events": f"Unknown events: {', '.join(sorted(unknown))}"})
        if self.thread_id and not re.fullmatch(r"\d{15,25}", self.thread_id):
            raise ValidationError({"thread_id": "A thread id is a number of 15 to 25 digits."})


class Notification(models.Model):
    """Something that happened, with its embed as it was then. Kept even with no destination,
    so /mgmt can preview it."""

    event = models.CharField(max_length=40, choices=Event)
    order = models.ForeignKey(
        "orders.Order",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    embed = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event} {self.embed.get('title', '')}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"


class Delivery(models.Model):
    """The outbox row: one per (notification, destination), written with the change."""

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="deliveries"
    )
    destination = models.ForeignKey(
        Destination, on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(max_length=10, choices=DeliveryStatus, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # After a 400: send this one alone, then (once) as the minimal fallback embed.
    solo = models.BooleanField(default=False)
    use_fallback = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=30, blank=True)
    # Compact mode: it reached Discord as an edit of its order's message, not as a new one.
    edited = models.BooleanField(default=False)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "deliveries"
        permissions = [("resend_notification", "Can send a Discord message again")]
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "destination"], name="one_delivery_per_destination"
            ),
            models.CheckConstraint(
                condition=Q(status__in=DeliveryStatus.values), name="delivery_status_valid"
            ),
        ]
        indexes = [
            models.Index(
                fields=["destination", "id"], condition=Q(status="pending"), name="delivery_backlog"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.notification} → {self.destination} ({self.status})"


class DeliveryAttempt(models.Model):
    """Every request made for a delivery, with Discord's answer."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    message_id = models.CharField(max_length=30, blank=True)
    batch_size = models.PositiveSmallIntegerField(default=1)
    fallback = models.BooleanField(default=False)
    edit = models.BooleanField(default=False)  # a PATCH of the order's message, not a POST

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} at {self.at:%H:%M:%S}: {self.status_code or self.error}"


class OrderMessage(models.Model):
    """Compact mode: the Discord message that shows an order to a destination, edited as the
    order moves. Kept with the webhook and thread it went to, where alone it can be edited."""

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="+")
    destination = models.ForeignKey(
        Destination, on_delete=models.CASCADE, related_name="order_messages"
    )
    message_id = models.CharField(max_length=30)
    webhook_id = models.CharField(max_length=30)
    thread_id = models.CharField(max_length=30, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["order", "destination"], name="one_message_per_order_and_destination"
            ),
        ]

    def __str__(self) -> str:
        return f"order {self.order_id} → {self.destination_id}: message {self.message_id}"


class GlobalRateLimit(models.Model):
    """What Discord limits per address, shared by all workers: one row (see ip_limits)."""

    blocked_until = models.DateTimeField(null=True, blank=True)
    # A Cloudflare ban: since when, and how many answers of it (each wait is longer).
    banned_since = models.DateTimeField(null=True, blank=True)
    bans = models.PositiveIntegerField(default=0)
    # When the last answers Discord counts as invalid (401, 403, 429) came, as timestamps.
    invalid_requests = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return f"global limit until {self.blocked_until}"
