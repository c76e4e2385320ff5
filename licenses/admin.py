from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import path

from audit.admin import CommandActions, command_action
from audit.commands import Refused
from shop.admin_mixins import ViewOnly

from . import commands
from .forms import ImportKeysForm
from .models import Activation, KeyEmail, License, PoolKey


@admin.register(PoolKey)
class PoolKeyAdmin(ViewOnly, admin.ModelAdmin):
    list_display = ["__str__", "product", "imported_at", "claimed_at"]
    list_filter = ["product", ("claimed_at", admin.EmptyFieldListFilter)]
    list_select_related = ["product"]
    fields = ["product", "imported_at", "claimed_at"]
    readonly_fields = ["product", "imported_at", "claimed_at"]
    change_list_template = "admin/licenses/poolkey/change_list.html"

    def get_urls(self):
        extra = [
            path("import/", self.admin_site.admin_view(self.import_view), name="poolkey_import")
        ]
        return extra + super().get_urls()

    def import_view(self, request):
        if not commands.import_pool_keys.permitted(request.user):
            raise PermissionDenied("Your role does not allow importing keys: ask an Owner.")
        form = ImportKeysForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                keys = form.parsed_keys()
            except UnicodeDecodeError:
                form.add_error("file", "The file is not UTF-8 text.")
            else:
                try:
                    imported, skipped = commands.import_pool_keys.run(
                        form.cleaned_data["product"], by=request.user, keys=keys
                    )
                except Refused as refused:
                    form.add_error(None, refused.words)
                else:
                    self.message_user(
                        request,
                        f"Imported {imported} key(s), skipped {skipped} duplicate(s) or blank(s).",
                        messages.SUCCESS,
                    )
                    return redirect("admin:licenses_poolkey_changelist")
        context = {**self.admin_site.each_context(request), "form": form, "title": "Import keys"}
        return render(request, "admin/licenses/poolkey/import.html", context)


@admin.action(description="Resend the keys email of these licenses' orders")
def resend(modeladmin, request, queryset):
    for order in {license.order for license in queryset.select_related("order")}:
        try:
            commands.resend_order_keys.run(order, by=request.user)
        except Refused as refused:
            modeladmin.message_user(request, f"{order}: {refused.words}", messages.ERROR)


resend.command = commands.resend_order_keys


class ActivationInline(admin.TabularInline):
    """The license's devices. The fingerprint is kept only as a hash, and not shown at all."""

    model = Activation
    extra = 0
    can_delete = False
    fields = ["label", "public_id", "created_at", "last_seen_at", "deactivated_at", "ended"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(License)
class LicenseAdmin(CommandActions, ViewOnly, admin.ModelAdmin):
    list_display = ["__str__", "masked_key", "status", "reason", "expires_at", "created_at"]
    list_filter = ["status", "reason", "product"]
    search_fields = ["order__number", "order__email"]
    list_select_related = ["order", "product"]
    exclude = ["key", "key_hash"]
    readonly_fields = [
        "order", "product", "status", "reason", "dispute_id", "masked_key", "pool_key",
        "public_id", "max_activations", "expires_at", "limit_reached_at",
        "created_at", "activated_at", "suspended_at", "revoked_at", "changed_by", "changed_at",
    ]  # fmt: skip
    actions = [
        command_action(commands.suspend, description="Suspend (staff)", done="suspended"),
        command_action(commands.reinstate, description="Reinstate", done="reinstated"),
        resend,
    ]
    inlines = [ActivationInline]


@admin.register(KeyEmail)
class KeyEmailAdmin(CommandActions, ViewOnly, admin.ModelAdmin):
    list_display = ["order", "kind", "status", "created_at", "sent_at", "attempts", "last_error"]
    list_filter = ["status", "kind"]
    list_select_related = ["order"]
    actions = [
        command_action(
            commands.send_key_email_again,
            description="Send the dead ones again (the mail server works again)",
            done="queued again",
        )
    ]
    readonly_fields = [f.name for f in KeyEmail._meta.fields]
