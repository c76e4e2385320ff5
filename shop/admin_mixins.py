"""What several apps' admins share: view-only records, amounts in their currency, JSON."""

import json

from django.contrib import admin
from django.utils.html import format_html

from shop.money import format_money


class ViewOnly:
    """A record of what happened: shown, never added, edited or deleted from a form (so its page
    has no Save buttons). Admin actions still work on it."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def money_field(field: str, description: str, *, ordering: str | None = None):
    """An admin column or read-only field showing `field` (minor units) in the row's currency,
    sorted by `ordering` (default: the field itself)."""

    @admin.display(description=description, ordering=ordering or field)
    def show(self, obj) -> str:
        return format_money(getattr(obj, field), obj.currency)

    show.__name__ = f"{field}_shown"
    return show


def pretty_json(value) -> str:
    return format_html(
        '<pre class="readonly">{}</pre>', json.dumps(value, indent=2, sort_keys=True)
    )
