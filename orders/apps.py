from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        # The system checks, and the offline gateway's delivery of its events to the webhook.
        from . import checks, offline_events  # noqa: F401
