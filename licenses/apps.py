from django.apps import AppConfig


class LicensesConfig(AppConfig):
    name = "licenses"

    def ready(self) -> None:
        from . import checks, receivers  # noqa: F401  (system checks; orders' signals)
