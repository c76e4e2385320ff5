from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        from . import checks, health, receivers  # noqa: F401  (system checks; orders' and licenses' signals)

        health.declare()  # the Discord worker's backlog, for /healthz
