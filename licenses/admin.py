from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect, render
from django.urls import path

from config.admin_mixins import ViewOnly
from orders.models import LicenseKind, Product

from .emails import resend_keys, retry_dead_key_emails
from .lifecycle import reinstate_license, suspend_license
from .models import Activation, KeyEmail, License, PoolKey
from .pool import import_keys, parse_keys


class ImportKeysForm(forms.Form):
    product = forms.ModelChoiceField(Product.objects.filter(license_kind=LicenseKind.POOL))
    file = forms.FileField(help_text="Text (one key per line) or CSV (keys in the first column).")


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
        form = ImportKeysForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                keys = parse_keys(form.cleaned_data["file"].read())
            except UnicodeDecodeError:
                form.add_error("file", "The file is not UTF-8 text.")
            else:
                imported, skipped = import_keys(form.cleaned_data["product"], keys)
                self.message_user(
                    request,
                    f"Imported {imported} key(s), skipped {skipped} duplicate(s) or blank(s).",
                    messages.SUCCESS,
                )
                return redirect("admin:licenses_poolkey_changelist")
        context = {**self.admin_site.each_context(request), "form": form, "title": "Import keys"}
        return render(request, "admin/licenses/poolkey/import.html", context)


def _each(modeladmin, request, objects, change) -> None:
    for obj in objects:
        try:
            change(obj, staff=request.user)
        except ValueError as error:
            modeladmin.message_user(request, f"{obj}: {error}", messages.ERROR)


@admin.action(description="Suspend (staff)")
def suspend(modeladmin, request, queryset):
    _each(modeladmin, request, queryset, suspend_license)


@admin.action(description="Reinstate")
def reinstate(modeladmin, request, queryset):
    _each(modeladmin, request, queryset, reinstate_license)


@admin.action(description="Resend the keys email of these licenses' orders")
def resend(modeladmin, request, queryset):
    orders = {license.order for license in queryset.select_related("order")}
    _each(modeladmin, request, orders, resend_keys)


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
class LicenseAdmin(ViewOnly, admin.ModelAdmin):
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
    actions = [suspend, reinstate, resend]
    inlines = [ActivationInline]


@admin.action(description="Send the dead ones again (the mail server works again)")
def retry_dead(modeladmin, request, queryset):
    count = retry_dead_key_emails(queryset)
    modeladmin.message_user(request, f"{count} dead key email(s) will be sent again.")


@admin.register(KeyEmail)
class KeyEmailAdmin(ViewOnly, admin.ModelAdmin):
    list_display = ["order", "kind", "status", "created_at", "sent_at", "attempts", "last_error"]
    list_filter = ["status", "kind"]
    list_select_related = ["order"]
    actions = [retry_dead]
    readonly_fields = [f.name for f in KeyEmail._meta.fields]
