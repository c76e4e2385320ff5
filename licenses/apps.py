from django.apps import AppConfig


class LicensesConfig(AppConfig):
    name = "licenses"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (connects to orders' signals)
