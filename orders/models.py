import secrets
import uuid

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q

from accounts.addresses import canonical_email
from shop.money import format_money

from . import amounts, disputes
from .statuses import DisputeStatus, RefundStatus

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_order_number() -> str:
    """Short, unguessable, easy to read aloud: no I, L, O or U, and no hint of how many orders exist."""
    return "".join(secrets.choice(CROCKFORD) for _ in range(8))


class Status(models.TextChoices):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"
    REFUNDED = "refunded"
    DISPUTED = "disputed"


class LicenseKind(models.TextChoices):
    GENERATED = "generated", "Generated keys"
    POOL = "pool", "Keys from an imported pool"
    NONE = "none", "No license key"


class Product(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    price_cents = models.PositiveBigIntegerField(help_text="Price in minor units (cents).")
    currency = models.CharField(max_length=3, default="usd")
    active = models.BooleanField(default=True)
    license_kind = models.CharField(
        max_length=10, choices=LicenseKind, default=LicenseKind.GENERATED
    )
    license_prefix = models.CharField(max_length=8, blank=True)
    stock_alert_threshold = models.PositiveIntegerField(
        default=5, help_text="Pool products: alert staff when fewer keys than this are left."
    )
    # Copied onto each license when it is issued: changing them later changes no sold license.
    max_activations = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Devices one license may be activated on at a time. Blank: unlimited.",
    )
    license_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Days a license works from the day it is issued. Blank: never expires.",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(license_kind__in=LicenseKind.values), name="product_license_kind_valid"
            ),
            # Zero would sell a license that can never be used: blank is how to say "no limit".
            models.CheckConstraint(
                condition=Q(max_activations=None) | Q(max_activations__gte=1),
                name="product_max_activations_positive",
            ),
            models.CheckConstraint(
                condition=Q(license_days=None) | Q(license_days__gte=1),
                name="product_license_days_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Order(models.Model):
    """An order and the payment facts Stripe told us; `status` is derived from those facts.

    Only `orders.transitions.transition_order` writes `status` (save() never does after creation).
    """

    number = models.CharField(max_length=12, unique=True, default=new_order_number, editable=False)
    public_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    email = models.EmailField()
    # The buyer's name as Stripe's Checkout collected it (customer_details.name): staff search it.
    customer_name = models.CharField(max_length=200, blank=True)
    # Its products' names as bought (items never change once placed): staff search them with
    # the order's other words, in one trigram index scan instead of a join per order.
    product_names = models.CharField(max_length=500, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="orders",
    )
    currency = models.CharField(max_length=3)
    subtotal_cents = models.PositiveBigIntegerField(help_text="From the catalog, at checkout time.")
    amount_total_cents = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="What Stripe charged (promotions and taxes included)."
    )
    # What the paying Checkout Session's `total_details` said: a promotion code's discount off
    # the items' subtotal, and the tax Stripe added (STRIPE_ALLOW_PROMOTION_CODES, _AUTOMATIC_TAX).
    discount_cents = models.PositiveBigIntegerField(default=0)
    tax_cents = models.PositiveBigIntegerField(default=0)
    livemode = models.BooleanField(default=False)
    # Each Checkout Session is an attempt; staff "retry" starts the next one.
    attempt = models.PositiveSmallIntegerField(default=1)
    # A renewal extends a license the customer has (licenses.renewals) instead of issuing one.
    is_renewal = models.BooleanField(default=False)
    stripe_session_id = models.CharField(max_length=255, blank=True, db_index=True)
    stripe_payment_intent_id = models.CharField(max_length=255, blank=True, db_index=True)
    stripe_charge_id = models.CharField(max_length=255, blank=True, db_index=True)
    # Payment facts.
    paid_at = models.DateTimeField(null=True, blank=True)
    paid_source = models.CharField(max_length=255, blank=True)
    payment_method = models.CharField(max_length=100, blank=True)
    # STRIPE_INVOICES: the invoice Stripe issued for the paying session, and the links an
    # `invoice.*` event gave for the invoice `invoice_links_for` (shown when the two agree).
    stripe_invoice_id = models.CharField(max_length=255, blank=True)
    invoice_links_for = models.CharField(max_length=255, blank=True)
    invoice_url = models.URLField(max_length=2000, blank=True)
    invoice_pdf_url = models.URLField(max_length=2000, blank=True)
    async_payment_pending = models.BooleanField(default=False)
    failure_code = models.CharField(max_length=100, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    failure_event_created = models.BigIntegerField(
        null=True, blank=True, help_text="Stripe `created` of the failure kept, so the latest wins."
    )
    failure_source = models.CharField(max_length=255, blank=True)
    charge_amount_refunded_cents = models.PositiveBigIntegerField(default=0)
    # Summaries of the Refund and Dispute rows, kept by `facts` so the status derives from this row.
    refunds_succeeded_cents = models.PositiveBigIntegerField(default=0)
    # What chargebacks took back (disputes past the inquiry stage, not won nor prevented), and the
    # dispute fees Stripe charged in the order's currency: the ledger (orders.amounts) reads both.
    chargebacks_cents = models.PositiveBigIntegerField(default=0)
    dispute_fees_cents = models.PositiveBigIntegerField(default=0)
    # Refund requests Stripe refused: each refusal gives the next request a new Idempotency-Key
    # (Stripe keeps a refused request's answer under its key for 24 hours).
    refund_refusals = models.PositiveIntegerField(default=0)
    disputes_summary = models.CharField(
        max_length=10,
        blank=True,
        help_text='"lost" if any dispute was lost, else "open" if any is open.',
    )
    open_dispute_reason = models.CharField(max_length=100, blank=True)
    # A refund that failed (or was canceled) after it was asked for: the customer has neither
    # money nor license. Set by the facts, cleared by staff (refund again or mark settled).
    refund_failed_at = models.DateTimeField(null=True, blank=True)
    # Stripe Radar, summarised from the order's FraudWarning and Review rows (facts): the fraud
    # type of its early fraud warning ("" when none), whether Stripe still calls it actionable
    # (not disputed nor refunded in full), and whether a review holds the keys (Review.holds_keys).
    fraud_type = models.CharField(max_length=40, blank=True)
    fraud_actionable = models.BooleanField(default=False)
    review_hold = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        # What staff roles grant (accounts.roles); orders.commands checks them.
        permissions = [
            ("complete_order", "Can complete an order paid outside Stripe"),
            ("refund_order", "Can refund an order"),
            ("retry_order", "Can retry a failed order (new payment link)"),
            ("settle_order", "Can mark a failed refund settled"),
            ("export_orders", "Can export orders as CSV"),
            ("simulate_dispute", "Can open and close test-mode disputes"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=Status.values), name="order_status_valid"
            ),
        ]
        indexes = [
            # A customer's orders, newest first (/account), and staff's search by email.
            models.Index(fields=["email", "-created_at"], name="order_email_recent"),
            # /mgmt's status tabs: a status's newest orders, and its bounded count.
            models.Index(fields=["status", "id"], name="order_status_recent"),
            # /mgmt's search by amount and its "Largest total" sort (amounts.TOTAL, then the id).
            models.Index(amounts.TOTAL, F("id"), name="order_total"),
        ]

    def __str__(self) -> str:
        return self.number

    def save(self, *args, **kwargs) -> None:
        if self._state.adding:  # /account matches orders to accounts by the canonical address
            self.email = canonical_email(self.email)
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                f.name
                for f in self._meta.concrete_fields
                if not f.primary_key and f.name != "status"
            ]
        elif kwargs.get("update_fields") and "status" in kwargs["update_fields"]:
            raise ValueError("Order.status is written only by transition_order().")
        super().save(*args, **kwargs)

    @property
    def total_cents(self) -> int:
        """For templates and the admin: amounts.total, where every total is computed."""
        return amounts.total(self)

    @property
    def is_paid(self) -> bool:
        return self.paid_at is not None

    def line_items(self) -> list["OrderItem"]:
        """The items with their products, loaded once per instance (an order's items never
        change once placed): the receivers of one transition (licenses, notifications) share
        them. One plain query; Django's prefetch machinery cost more than the query itself."""
        items = self.__dict__.get("_line_items")
        if items is None:
            from .statements import items_with_products  # it reads this module's models

            items = items_with_products(self)
            for item in items:
                item._state.fields_cache["order"] = self
            self._line_items = items
        return list(items)

    def refresh_from_db(self, *args, **kwargs) -> None:
        self.__dict__.pop("_line_items", None)
        super().refresh_from_db(*args, **kwargs)


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField(default=1)
    unit_price_cents = models.PositiveBigIntegerField()

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product}"

    @property
    def line_total_cents(self) -> int:
        return self.quantity * self.unit_price_cents


class CheckoutSession(models.Model):
    """A Checkout Session the shop created, with what it asked for: only these may pay their
    order (a Payment Link or another integration on the same Stripe account may name any order
    in `client_reference_id` or metadata)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="checkout_sessions")
    stripe_session_id = models.CharField(max_length=255, unique=True)
    attempt = models.PositiveSmallIntegerField()
    amount_cents = models.BigIntegerField(help_text="The items' total the session asked for.")
    currency = models.CharField(max_length=3)
    # Where the buyer pays, until when: "Continue to payment" while it is open.
    url = models.URLField(max_length=2000, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # The shop expired it (staff completed or retried the order): its expiry is no failure.
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.stripe_session_id


class PaymentMismatch(models.Model):
    """A Checkout Session that named an order it may not pay: one the shop did not create for
    it, or paid with another currency or less than asked. Kept (once per session) so the
    order's page shows it and staff are told; the order is never completed by it."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="payment_mismatches")
    stripe_session_id = models.CharField(max_length=255, unique=True)
    stripe_payment_intent_id = models.CharField(max_length=255, blank=True)
    payment_status = models.CharField(max_length=30, blank=True)
    amount_cents = models.BigIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    problem = models.CharField(max_length=500)
    source = models.CharField(max_length=255, help_text="Stripe event id or page.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.stripe_session_id} for {self.order}"

    @property
    def paid(self) -> str:
        """What the session took, in its own currency, or "—" when Stripe did not say."""
        if self.amount_cents is None or not self.currency:
            return "—"
        return format_money(self.amount_cents, self.currency)


class OrderTransition(models.Model):
    """The audit trail: one row per real status change (and one for the order's creation)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=10, choices=Status, blank=True)
    to_status = models.CharField(max_length=10, choices=Status)
    source = models.CharField(max_length=255, help_text="Stripe event id, page, or staff user.")
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.order}: {self.from_status or '∅'} → {self.to_status}"


class Refund(models.Model):
    State = RefundStatus
    # A refund's status only moves up this ladder, so late or repeated events cannot undo it.
    RANK = {
        RefundStatus.PENDING: 0,
        RefundStatus.REQUIRES_ACTION: 1,
        RefundStatus.SUCCEEDED: 2,
        RefundStatus.FAILED: 3,
        RefundStatus.CANCELED: 3,
    }

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="refunds")
    stripe_refund_id = models.CharField(max_length=255, unique=True)
    amount_cents = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20, choices=RefundStatus)
    reason = models.CharField(max_length=500, blank=True)
    failure_reason = models.CharField(max_length=100, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sequence = models.PositiveIntegerField(null=True, blank=True, help_text="Staff refund number.")
    # Stripe's own reason (requested_by_customer, duplicate, fraudulent, …), beside staff's words.
    stripe_reason = models.CharField(max_length=50, blank=True)
    # Told only by a charge.refunded of an API version without refund events (2022-11-15 up to
    # 2024-10-28): a refund of the difference, named after the charge and its refunded total.
    reported_by_charge = models.BooleanField(default=False)
    # The licenses staff chose to revoke with this refund (refund by seat).
    seats = models.JSONField(default=list, blank=True)
    # Once seen succeeded, a refund counts for good: "refunded" is final, whatever arrives later.
    succeeded_once = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=RefundStatus.values), name="refund_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.stripe_refund_id


class Dispute(models.Model):
    Status = DisputeStatus

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="disputes")
    stripe_dispute_id = models.CharField(max_length=255, unique=True)
    amount_cents = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=30, choices=DisputeStatus)
    # Stripe `created` of the event that told the current status, and of the earliest appeal
    # status seen: together they keep the status moving forward only (orders.disputes).
    status_created = models.BigIntegerField(default=0)
    appealed_at = models.BigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=100, blank=True)
    evidence_due_by = models.DateTimeField(null=True, blank=True)
    funds_withdrawn = models.BooleanField(default=False)
    funds_reinstated = models.BooleanField(default=False)
    # Stripe's dispute fee, from the dispute's balance transactions (the longest list seen), in
    # the currency of the account's balance, which may differ from the order's.
    fee_cents = models.BigIntegerField(default=0)
    fee_currency = models.CharField(max_length=3, blank=True)
    balance_transactions_seen = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=DisputeStatus.values), name="dispute_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.stripe_dispute_id

    @property
    def is_open(self) -> bool:
        return disputes.is_open(self.status)

    @property
    def needs_response(self) -> bool:
        return self.status in disputes.NEEDS_RESPONSE

    @property
    def stage(self) -> int:
        return disputes.stage_of(self.status, self.status_created, self.appealed_at)

    @property
    def chargeback_cents(self) -> int:
        return self.amount_cents if disputes.takes_money(self.status) else 0


class FraudWarning(models.Model):
    """A Stripe Radar early fraud warning on the order's charge (`radar.early_fraud_warning.*`).
    Stripe calls it actionable until the charge is disputed or refunded in full, which is for
    good: once any event says it is not, it is not, so a late `.created` never undoes an
    `.updated` (Stripe stamps both with the same second often enough to make time no guide)."""

    class AutoRefund(models.TextChoices):
        NONE = "", "—"
        DUE = "due", "Refund due (STRIPE_REFUND_ON_FRAUD_WARNING)"
        DONE = "done", "Refunded"
        SKIPPED = "skipped", "Not refunded"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="fraud_warnings")
    stripe_warning_id = models.CharField(max_length=255, unique=True)
    fraud_type = models.CharField(max_length=40, blank=True)
    actionable = models.BooleanField(default=False)
    # The refund STRIPE_REFUND_ON_FRAUD_WARNING asks for: written with the warning (an outbox
    # row), made by the `refund_fraud_warnings` worker through orders.commands, never the webhook.
    auto_refund = models.CharField(max_length=10, choices=AutoRefund, blank=True, db_index=True)
    auto_refund_detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(auto_refund__in=["", "due", "done", "skipped"]),
                name="fraud_warning_auto_refund_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.stripe_warning_id

    @property
    def fraud_type_words(self) -> str:
        return self.fraud_type.replace("_", " ")


class Review(models.Model):
    """A Stripe Radar review of the order's payment (`review.opened` / `review.closed`). A review
    only moves forward (open → closed), so a late `review.opened` never reopens it."""

    # Stripe's `closed_reason`s that let the keys go: approved (or acknowledged), or disputed,
    # where the dispute's own suspension takes over. Refunded (as fraud or not) keeps the hold
    # until the refund's events revoke the keys; a payment canceled or never settled keeps it.
    RELEASES = ("approved", "acknowledged", "disputed")
    MONEY_BACK = ("refunded", "refunded_as_fraud")

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="reviews")
    stripe_review_id = models.CharField(max_length=255, unique=True)
    opened_reason = models.CharField(max_length=40, blank=True)  # "rule" or "manual"
    open = models.BooleanField(default=True)
    closed_reason = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.stripe_review_id

    @property
    def holds_keys(self) -> bool:
        """Open, or closed in a way that does not release the keys (RELEASES)."""
        return self.open or self.closed_reason not in self.RELEASES


class EventOutcome(models.TextChoices):
    APPLIED = "applied", "Applied"
    NO_CHANGE = "no_change", "Nothing new"
    UNHANDLED = "unhandled", "Type not handled"
    UNKNOWN_ORDER = "unknown_order", "Unknown order"
    LIVEMODE_MISMATCH = "livemode_mismatch", "Livemode mismatch"
    PAYMENT_MISMATCH = "payment_mismatch", "Payment not for this order"


class StripeEvent(models.Model):
    """Every event Stripe (or the offline gateway) delivered, stored once by its id."""

    Outcome = EventOutcome

    id = models.CharField(max_length=255, primary_key=True)
    type = models.CharField(max_length=100, db_index=True)
    livemode = models.BooleanField(default=False)
    created = models.BigIntegerField(help_text="Stripe `created`, seconds since the epoch.")
    payload = models.JSONField()
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="stripe_events"
    )
    api_version = models.CharField(max_length=40, blank=True)
    # The PaymentIntent and charge an unmatched refund or dispute event names: applied once an
    # order knows either.
    payment_intent_id = models.CharField(max_length=255, blank=True, db_index=True)
    charge_id = models.CharField(max_length=255, blank=True, db_index=True)
    outcome = models.CharField(max_length=20, choices=EventOutcome)
    detail = models.CharField(max_length=500, blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=EventOutcome.values), name="stripe_event_outcome_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.type}"


class OfflineObject(models.Model):
    """A Stripe-shaped object (session, refund, dispute) kept by the offline test gateway."""

    id = models.CharField(max_length=64, primary_key=True)
    kind = models.CharField(max_length=20)
    data = models.JSONField()
    idempotency_key = models.CharField(max_length=255, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.id


class OfflineEvent(models.Model):
    """An event the offline gateway emitted; delivered (signed) to our own webhook handler."""

    id = models.CharField(max_length=64, primary_key=True)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    deliver_after = models.DateTimeField(db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["deliver_after", "id"]

    def __str__(self) -> str:
        return f"{self.id} {self.type}"
