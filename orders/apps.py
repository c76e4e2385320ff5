from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        # The system checks, and the offline gateway's delivery of its events to the webhook.
        from . import checks, health, offline_events  # noqa: F401

        health.declare()  # the test gateway worker's backlog, for /healthz
