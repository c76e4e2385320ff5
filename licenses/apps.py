from django.apps import AppConfig


class LicensesConfig(AppConfig):
    name = "licenses"

    def ready(self) -> None:
        from . import checks, health, receivers  # noqa: F401  (system checks; orders' signals)

        health.declare()  # the key email worker's backlog, for /healthz
