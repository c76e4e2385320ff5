from datetime import UTC, datetime

from django.contrib import admin
from django.utils import timezone
from django.utils.formats import date_format

from audit.admin import CommandActions, command_action
from shop.admin_mixins import ViewOnly, money_field, pretty_json
from shop.money import format_money

from . import amounts, commands
from .models import (
    Dispute,
    FraudWarning,
    Order,
    OrderItem,
    OrderTransition,
    Product,
    Refund,
    Review,
    StripeEvent,
)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = [
        "name", "slug", "price", "license_kind", "max_activations", "license_days", "active",
    ]  # fmt: skip
    list_filter = ["active", "license_kind"]
    prepopulated_fields = {"slug": ["name"]}

    price = money_field("price_cents", "price")


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ItemInline(ReadOnlyInline):
    model = OrderItem
    fields = ["product", "quantity", "unit_price"]
    readonly_fields = fields

    @admin.display(description="unit price")
    def unit_price(self, item) -> str:
        return format_money(item.unit_price_cents, item.order.currency)


class TransitionInline(ReadOnlyInline):
    model = OrderTransition


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = [
        "stripe_refund_id",
        "amount",
        "status",
        "reason",
        "failure_reason",
        "requested_by",
        "created_at",
    ]
    readonly_fields = fields
    amount = money_field("amount_cents", "amount")


class DisputeInline(ReadOnlyInline):
    model = Dispute
    fields = ["stripe_dispute_id", "amount", "status", "reason", "evidence_due_by", "created_at"]
    readonly_fields = fields
    amount = money_field("amount_cents", "amount")


class FraudWarningInline(ReadOnlyInline):
    model = FraudWarning
    fields = ["stripe_warning_id", "fraud_type", "actionable", "auto_refund", "created_at"]
    readonly_fields = fields


class ReviewInline(ReadOnlyInline):
    model = Review
    fields = ["stripe_review_id", "opened_reason", "open", "closed_reason", "created_at"]
    readonly_fields = fields


@admin.register(Order)
class OrderAdmin(CommandActions, ViewOnly, admin.ModelAdmin):
    list_display = ["number", "email", "status", "total", "created_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["number", "email", "stripe_session_id", "stripe_payment_intent_id"]
    list_select_related = ["user"]
    fields = [
        "number", "public_id", "status", "email", "user", "currency", "subtotal", "total",
        "refunded", "payment_method", "paid_at", "paid_source", "async_payment_pending",
        "failure_code", "failure_message", "attempt", "livemode", "stripe_session_id",
        "stripe_payment_intent_id", "stripe_charge_id", "disputes_summary", "discount_cents",
        "tax_cents", "fraud_type", "fraud_actionable", "review_hold", "created_at", "updated_at",
    ]  # fmt: skip
    readonly_fields = fields
    inlines = [
        ItemInline,
        TransitionInline,
        RefundInline,
        DisputeInline,
        FraudWarningInline,
        ReviewInline,
    ]
    # The same commands as /mgmt (audited, with the same permissions); retry's payment link and
    # the refund form are on /mgmt.
    actions = [
        command_action(
            commands.complete, description="Complete (offline payment received)", done="completed"
        ),
        command_action(commands.open_test_dispute, description="TEST MODE: open a dispute"),
        command_action(
            commands.close_test_dispute_won, description="TEST MODE: close the dispute as won"
        ),
        command_action(
            commands.close_test_dispute_lost, description="TEST MODE: close the dispute as lost"
        ),
    ]

    subtotal = money_field("subtotal_cents", "subtotal (catalog)")
    total = money_field("total_cents", "total", ordering="amount_total_cents")

    @admin.display(description="refunded")
    def refunded(self, order: Order) -> str:
        return format_money(amounts.refunded(order), order.currency)


@admin.register(StripeEvent)
class StripeEventAdmin(ViewOnly, admin.ModelAdmin):
    list_display = ["id", "type", "outcome", "order", "received_at"]
    list_filter = ["outcome", "type"]
    search_fields = ["id", "payment_intent_id"]
    list_select_related = ["order"]
    fields = [
        "id", "type", "outcome", "detail", "order", "livemode", "created_at", "received_at",
        "payment_intent_id", "payload_shown",
    ]  # fmt: skip
    readonly_fields = fields

    @admin.display(description="created at Stripe", ordering="created")
    def created_at(self, event: StripeEvent) -> str:
        return date_format(
            datetime.fromtimestamp(event.created, UTC).astimezone(timezone.get_current_timezone()),
            "DATETIME_FORMAT",
        )

    @admin.display(description="payload")
    def payload_shown(self, event: StripeEvent) -> str:
        return pretty_json(event.payload)
