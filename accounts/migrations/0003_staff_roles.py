"""The staff roles (accounts.roles): Support, Finance and Owner groups with their permissions."""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations


def make_roles(apps, schema_editor):
    # Permissions are made after all migrations ran; the roles need them now.
    for config in global_apps.get_app_configs():
        create_permissions(config, verbosity=0, apps=apps)
    from accounts.roles import sync_roles

    sync_roles(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_canonical_emails"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("audit", "0002_staff_actions_moved"),
        ("orders", "0010_command_permissions"),
        ("licenses", "0004_command_permissions"),
        ("notifications", "0008_command_permissions"),
    ]

    operations = [migrations.RunPython(make_roles, migrations.RunPython.noop)]
