from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    default = True

    def ready(self) -> None:
        from . import checks  # noqa: F401  (system checks)

        # After every migrate (and a test database's flush), the roles have their groups and
        # any permission a later migration added: sync_roles only adds.
        post_migrate.connect(_sync_roles, sender=self, dispatch_uid="accounts_sync_roles")


def _sync_roles(sender, using: str = "default", **kwargs) -> None:
    from django.apps import apps
    from django.contrib.auth.management import create_permissions

    from .roles import sync_roles

    # Apps later in INSTALLED_APPS get their permissions after this signal: make them now.
    for config in apps.get_app_configs():
        create_permissions(config, verbosity=0, using=using)
    sync_roles(apps)


class ShopAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin, with accounts.admin_site.ShopAdminSite as `admin.site` (imported
    once the apps are loaded: it imports forms, which import models). Named in INSTALLED_APPS."""

    default = False
    default_site = "accounts.admin_site.ShopAdminSite"
