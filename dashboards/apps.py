from django.apps import AppConfig


class DashboardsConfig(AppConfig):
    """/account (customers) and /mgmt (staff): reads every app, writes only through their
    functions."""

    name = "dashboards"
