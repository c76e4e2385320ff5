"""The /mgmt audit rows (dashboards.StaffAction) become audit.Action rows, named by command."""

from django.db import migrations

COMMANDS = {
    "complete": "orders.complete",
    "refund": "orders.refund",
    "retry": "orders.retry",
    "settle_refund": "orders.settle",
    "resend_keys": "licenses.resend_keys",
    "suspend_license": "licenses.suspend",
    "reinstate_license": "licenses.reinstate",
    "reveal_key": "licenses.reveal_key",
    "import_keys": "licenses.import_keys",
    "resend_notification": "notifications.resend",
    "test_notification": "notifications.test_destination",
    "enable_destination": "notifications.enable_destination",
    "disable_destination": "notifications.disable_destination",
}


def move(apps, schema_editor):
    StaffAction = apps.get_model("dashboards", "StaffAction")
    Action = apps.get_model("audit", "Action")
    for old in StaffAction.objects.order_by("id").iterator():
        new = Action.objects.create(
            user_id=old.user_id,
            command=COMMANDS.get(old.kind, old.kind),
            order_id=old.order_id,
            target=old.target,
            detail=old.detail,
            outcome="done" if old.succeeded else "refused",
        )
        Action.objects.filter(pk=new.pk).update(created_at=old.created_at)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_actions"), ("dashboards", "0002_staff_actions")]

    operations = [migrations.RunPython(move, migrations.RunPython.noop)]
