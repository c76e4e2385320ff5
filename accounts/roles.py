"""Staff roles: Django groups of permissions, made by a migration and kept by `sync_roles`.

- Support reads everything on /mgmt and in the admin, resends keys and Discord messages, retries
  a failed order, and resets a license's devices.
- Finance also moves money (refund, complete, settle a failed refund), exports the CSV, sees full
  keys, suspends and reinstates licenses, and plays test-mode disputes.
- Owner may do everything: Discord destinations, key imports, the catalog, staff accounts.

A staff member without a role (is_staff and no group) may open nothing on /mgmt. Superusers keep
every permission, as Django gives them.
"""

from django.db.models import Q

# Apps whose every record Support may read.
READ_APPS = ["orders", "licenses", "notifications", "audit"]
SUPPORT = [
    "licenses.resend_keys",
    "licenses.reset_activations",
    "notifications.resend_notification",
    "orders.retry_order",
]
FINANCE = [
    *SUPPORT,
    "orders.refund_order",
    "orders.complete_order",
    "orders.settle_order",
    "orders.export_orders",
    "orders.simulate_dispute",
    "licenses.reveal_key",
    "licenses.suspend_license",
    "licenses.reinstate_license",
]
ROLES: dict[str, list[str] | None] = {"Support": SUPPORT, "Finance": FINANCE, "Owner": None}


def _named(Permission, names: list[str]):
    query = Q(pk__in=[])
    for name in names:
        app_label, codename = name.split(".")
        query |= Q(content_type__app_label=app_label, codename=codename)
    return Permission.objects.filter(query)


def sync_roles(apps) -> None:
    """Make the groups and give each its permissions (only ever adding: an owner's additions to
    a group stay). `apps`: a migration's app registry, or django.apps.apps."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    reading = Permission.objects.filter(
        content_type__app_label__in=READ_APPS, codename__startswith="view_"
    )
    for name, granted in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        permissions = Permission.objects.all() if granted is None else _named(Permission, granted)
        group.permissions.add(*reading, *permissions)
