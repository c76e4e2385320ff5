from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        from . import checks, receivers  # noqa: F401  (system checks; orders' and licenses' signals)
