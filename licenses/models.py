import uuid

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
    REVIEW = "review", "Payment under review"


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
    # What the license API and its certificates call the license: never the primary key.
    public_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    # The product's terms when the license was issued (blank: unlimited, never expires).
    max_activations = models.PositiveIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # The last time staff were told its activations ran out (at most once a day).
    limit_reached_at = models.DateTimeField(null=True, blank=True)
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
            ("reset_activations", "Can end every device's activation of a license"),
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
            # The expiry reminders' daily look for active licenses expiring soon.
            models.Index(
                fields=["expires_at"],
                condition=Q(status="active", expires_at__isnull=False),
                name="license_expiring",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product} license for {self.order} ({self.status})"

    @property
    def masked_key(self) -> str:
        return f"…{self.key[-4:]}" if self.key else ""


class ActivationEnd(models.TextChoices):
    NONE = "", "—"
    CLIENT = "client", "Deactivated with the key (API)"
    CUSTOMER = "customer", "Deactivated by the customer"
    STAFF = "staff", "Reset by staff"
    REVOKED = "revoked", "License revoked"


LABEL_MAX = 100


class Activation(models.Model):
    """A device a license is activated on. The device's fingerprint is kept only as a keyed
    hash (keys.hash_fingerprint); the label is the name the client gave it, shown escaped."""

    license = models.ForeignKey(License, on_delete=models.CASCADE, related_name="activations")
    public_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    fingerprint_hash = models.CharField(max_length=64)
    label = models.CharField(max_length=LABEL_MAX, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()
    deactivated_at = models.DateTimeField(null=True, blank=True)
    ended = models.CharField(max_length=10, choices=ActivationEnd, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # Two requests activating the same device at once make one activation, not two.
            models.UniqueConstraint(
                fields=["license", "fingerprint_hash"],
                condition=Q(deactivated_at=None),
                name="activation_one_active_per_device",
            ),
            models.CheckConstraint(
                condition=Q(ended__in=ActivationEnd.values), name="activation_ended_valid"
            ),
            models.CheckConstraint(
                condition=Q(deactivated_at=None, ended="") | Q(deactivated_at__isnull=False),
                name="activation_ended_when_deactivated",
            ),
        ]
        indexes = [
            # The deactivations of a license in the last 30 days (the churn limit).
            models.Index(
                fields=["license", "deactivated_at"],
                condition=Q(deactivated_at__isnull=False),
                name="activation_ended_recently",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label or 'device'} ({'active' if self.is_active else 'deactivated'})"

    @property
    def is_active(self) -> bool:
        return self.deactivated_at is None


class SigningKey(models.Model):
    """An Ed25519 key that signs license certificates. The private key is stored encrypted
    (certificates.py says with what, and why here); the public key is published as a JWK."""

    kid = models.CharField(max_length=64, unique=True)
    public_key = models.CharField(max_length=64, help_text="Raw public key, base64url.")
    private_key = models.BinaryField(blank=True, editable=False)  # encrypted; emptied when retired
    # True for the one key that signs; NULL once retired (NULLs never collide in the index).
    current = models.BooleanField(null=True, default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["current"], condition=Q(current=True), name="signing_key_one_current"
            ),
        ]

    def __str__(self) -> str:
        return f"signing key {self.kid}"


class KeyEmailKind(models.TextChoices):
    KEYS = "keys", "License keys"
    EXPIRY = "expiry", "Expiry reminder"
    # What the buyer is told as their order moves (licenses.notices writes them).
    PAYMENT_FAILED = "payment_failed", "Bank payment failed"
    REFUNDED = "refunded", "Refund made"
    REFUND_PENDING = "refund_pending", "Refund on its way"
    REFUND_FAILED = "refund_failed", "Refund failed"
    DISPUTE_OPENED = "dispute_opened", "Dispute opened"
    DISPUTE_CLOSED = "dispute_closed", "Dispute closed"
    SUSPENDED = "suspended", "Key suspended"
    REINSTATED = "reinstated", "Key reinstated"


class KeyEmailStatus(models.TextChoices):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"  # attempts used up: waits for staff to send it again


class KeyEmail(models.Model):
    """An email to the buyer (the order's keys, an expiry reminder, or a notice that the order
    moved): written with the change, sent by the `send_key_emails` worker, so a mail server
    outage delays it and loses nothing."""

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="key_emails")
    kind = models.CharField(max_length=20, choices=KeyEmailKind, default=KeyEmailKind.KEYS)
    # A notice's real change ("re_123", "dp_1:closed:won"): one email per (order, kind, reference),
    # however often Stripe tells it.
    reference = models.CharField(max_length=120, blank=True)
    # A notice is written in the words of the moment it happened (never with a full key).
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    # An expiry reminder's license and the expiry it is about: one reminder per expiry date.
    license = models.ForeignKey(
        License, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
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
            models.CheckConstraint(
                condition=Q(kind__in=KeyEmailKind.values), name="key_email_kind_valid"
            ),
            models.UniqueConstraint(
                fields=["license", "expires_at"],
                condition=Q(kind="expiry"),
                name="key_email_one_reminder_per_expiry",
            ),
            models.UniqueConstraint(
                fields=["order", "kind", "reference"],
                condition=~Q(reference=""),
                name="key_email_one_notice_per_change",
            ),
        ]
        indexes = [
            models.Index(fields=["id"], condition=Q(status="pending"), name="key_email_backlog"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} email for {self.order}"


class Renewal(models.Model):
    """A renewal order for a license the customer has: once paid it extends that license's expiry
    by `days` (from its expiry, or from the payment if it had expired); a refund or a lost
    chargeback of the renewal takes the extension back. The key stays the same."""

    order = models.OneToOneField("orders.Order", on_delete=models.CASCADE, related_name="renewal")
    license = models.ForeignKey(License, on_delete=models.CASCADE, related_name="renewals")
    days = models.PositiveIntegerField(help_text="The product's license days when it was bought.")
    previous_expires_at = models.DateTimeField(null=True, blank=True)
    extended_to = models.DateTimeField(null=True, blank=True)
    taken_back_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"renewal of license {self.license_id} by {self.order}"
