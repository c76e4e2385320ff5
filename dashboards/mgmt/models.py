from django.conf import settings
from django.db import models
from django.db.models import Q


class StaffActionKind(models.TextChoices):
    COMPLETE = "complete", "Completed the order"
    REFUND = "refund", "Refunded"
    RETRY = "retry", "Retried (new payment link)"
    RESEND_KEYS = "resend_keys", "Resent the keys email"
    RESEND_NOTIFICATION = "resend_notification", "Queued a notification again"
    SUSPEND_LICENSE = "suspend_license", "Suspended a license"
    REINSTATE_LICENSE = "reinstate_license", "Reinstated a license"
    REVEAL_KEY = "reveal_key", "Looked at a license key"
    SETTLE_REFUND = "settle_refund", "Settled a failed refund"
    IMPORT_KEYS = "import_keys", "Imported pool keys"
    TEST_NOTIFICATION = "test_notification", "Sent a test notification"
    ENABLE_DESTINATION = "enable_destination", "Enabled a destination"
    DISABLE_DESTINATION = "disable_destination", "Disabled a destination"


class StaffAction(models.Model):
    """Who did what on /mgmt, when, and whether it worked: written for every action, refused or
    not, so the log also shows attempts that the shop turned down."""

    Kind = StaffActionKind

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=30, choices=StaffActionKind)
    order = models.ForeignKey(
        "orders.Order",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="staff_actions",
    )
    target = models.CharField(max_length=255, blank=True, help_text="License, delivery, …")
    detail = models.CharField(max_length=500, blank=True)
    succeeded = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=StaffActionKind.values), name="staff_action_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.kind} {self.order or self.target}"
