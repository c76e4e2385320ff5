from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AccountsConfig(AppConfig):
    name = "accounts"
    default = True

    def ready(self) -> None:
        from . import checks  # noqa: F401  (system checks)


class ShopAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin, with accounts.admin_site.ShopAdminSite as `admin.site` (imported
    once the apps are loaded: it imports forms, which import models). Named in INSTALLED_APPS."""

    default = False
    default_site = "accounts.admin_site.ShopAdminSite"
