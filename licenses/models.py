from django.conf import settings
from django.db import models
from django.db.models import Q


class LicenseStatus(models.TextChoices):
    PENDING = "pending"  # bought, waiting for a key (pool out of stock)
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


class SuspensionReason(models.TextChoices):
    NONE = "", "—"
    DISPUTE = "dispute", "Payment disputed"
    STAFF = "staff", "Suspended by staff"
    REFUND = "refund", "Order refunded"
    CHARGEBACK = "chargeback", "Chargeback lost"


class PoolKey(models.Model):
    """A vendor's key imported by staff. Claimed once, never returned to stock."""

    product = models.ForeignKey(
        "orders.Product", on_delete=models.PROTECT, related_name="pool_keys"
    )
    key = models.CharField(max_length=200)
    key_hash = models.CharField(max_length=64, unique=True)
    imported_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["product", "id"], condition=Q(claimed_at=None), name="poolkey_in_stock"
            )
        ]

    def __str__(self) -> str:
        return f"{self.product} key …{self.key[-4:]}"


class License(models.Model):
    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="licenses")
    product = models.ForeignKey("orders.Product", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=LicenseStatus)
    reason = models.CharField(max_length=10, choices=SuspensionReason, blank=True)
    dispute_id = models.CharField(
        max_length=255, blank=True, help_text="The Stripe dispute that suspended this license."
    )
    key = models.CharField(max_length=200, blank=True)
    # HMAC of the normalised key: the validate API looks keys up by it, never by the key itself.
    key_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    pool_key = models.OneToOneField(
        PoolKey, null=True, blank=True, on_delete=models.PROTECT, related_name="license"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # The last suspension or reinstatement by hand, and who made it.
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        # What staff roles grant (accounts.roles); licenses.commands checks them.
        permissions = [
            ("suspend_license", "Can suspend a license"),
            ("reinstate_license", "Can reinstate a suspended license"),
            ("reveal_key", "Can see a full license key"),
            ("resend_keys", "Can send an order's keys email again"),
            ("import_keys", "Can import pool keys"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=LicenseStatus.values), name="license_status_valid"
            ),
        ]
        indexes = [
            models.Index(
                fields=["product", "created_at"],
                condition=Q(status="pending"),
                name="license_waiting",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product} license for {self.order} ({self.status})"

    @property
    def masked_key(self) -> str:
        return f"…{self.key[-4:]}" if self.key else ""


class KeyEmailStatus(models.TextChoices):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"  # attempts used up: waits for staff to send it again


class KeyEmail(models.Model):
    """The email that carries an order's keys: written with the change, sent by the
    `send_key_emails` worker, so a mail server outage delays it and loses nothing."""

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="key_emails")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=10, choices=KeyEmailStatus, default=KeyEmailStatus.PENDING)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=KeyEmailStatus.values), name="key_email_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["id"], condition=Q(status="pending"), name="key_email_backlog"),
        ]

    def __str__(self) -> str:
        return f"keys email for {self.order}"
