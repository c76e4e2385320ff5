from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .checkout import OrderActionError, complete_order, refund_order, retry_order
from .gateways import GatewayError, get_gateway, is_offline
from .models import Dispute, Order, OrderItem, OrderTransition, Product, Refund, StripeEvent


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "price_cents", "currency", "license_kind", "active"]
    list_filter = ["active", "license_kind"]
    prepopulated_fields = {"slug": ["name"]}


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ItemInline(ReadOnlyInline):
    model = OrderItem


class TransitionInline(ReadOnlyInline):
    model = OrderTransition


class RefundInline(ReadOnlyInline):
    model = Refund


class DisputeInline(ReadOnlyInline):
    model = Dispute


def _each(modeladmin, request: HttpRequest, orders: QuerySet, action, done: str) -> None:
    for order in orders:
        try:
            action(order)
        except (OrderActionError, GatewayError) as error:
            modeladmin.message_user(request, f"{order}: {error}", messages.ERROR)
        else:
            modeladmin.message_user(request, f"{order}: {done}", messages.SUCCESS)


@admin.action(description="Complete (offline payment received)")
def complete(modeladmin, request, orders):
    _each(modeladmin, request, orders, lambda o: complete_order(o, staff=request.user), "completed")


@admin.action(description="Refund in full")
def refund(modeladmin, request, orders):
    _each(
        modeladmin,
        request,
        orders,
        lambda o: refund_order(o, staff=request.user, reason="refunded from admin"),
        "refunded",
    )


@admin.action(description="Retry (new payment link)")
def retry(modeladmin, request, orders):
    for order in orders:
        try:
            link = retry_order(order, staff=request.user)
        except (OrderActionError, GatewayError) as error:
            modeladmin.message_user(request, f"{order}: {error}", messages.ERROR)
        else:
            modeladmin.message_user(
                request,
                f"{order}: retried. Send the customer this payment link: {link}",
                messages.SUCCESS,
            )


@admin.action(description="TEST MODE: open a dispute")
def open_dispute(modeladmin, request, orders):
    if not is_offline():
        return modeladmin.message_user(
            request, "Disputes are simulated in test mode only.", messages.ERROR
        )
    gateway = get_gateway()
    _each(
        modeladmin,
        request,
        orders,
        lambda o: gateway.open_dispute(o.stripe_payment_intent_id),
        "dispute opened",
    )


def _close(won: bool):
    def close(modeladmin, request, orders):
        if not is_offline():
            return modeladmin.message_user(
                request, "Disputes are simulated in test mode only.", messages.ERROR
            )
        gateway = get_gateway()

        def close_open(order):
            for dispute in order.disputes.filter(status__in=Dispute.OPEN):
                gateway.close_dispute(dispute.stripe_dispute_id, won=won)

        _each(modeladmin, request, orders, close_open, "dispute closed")

    close.__name__ = f"close_dispute_{'won' if won else 'lost'}"
    return admin.action(description=f"TEST MODE: close dispute as {'won' if won else 'lost'}")(
        close
    )


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["number", "email", "status", "total_cents", "currency", "created_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["number", "email", "stripe_session_id", "stripe_payment_intent_id"]
    readonly_fields = [f.name for f in Order._meta.fields]
    inlines = [ItemInline, TransitionInline, RefundInline, DisputeInline]
    actions = [complete, refund, retry, open_dispute, _close(True), _close(False)]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the record of what was sold and paid: never deleted from a form


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    list_display = ["id", "type", "outcome", "order", "received_at"]
    list_filter = ["outcome", "type"]
    search_fields = ["id", "payment_intent_id"]
    readonly_fields = [f.name for f in StripeEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the record of what was sold and paid: never deleted from a form
