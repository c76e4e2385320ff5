from django.urls import path

from .views import events, licenses, notifications, orders, overview, radar, staff_settings

app_name = "mgmt"

order = "orders/<str:number>/"
license = order + "licenses/<int:pk>/"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("orders/", orders.orders, name="orders"),
    path("orders/export.csv", orders.export, name="export"),
    path(order, orders.order, name="order"),
    path(order + "complete/", orders.complete, name="complete"),
    path(order + "refund/", orders.refund, name="refund"),
    path(order + "retry/", orders.retry, name="retry"),
    path(order + "resend-keys/", orders.resend_keys, name="resend_keys"),
    path(order + "settle/", orders.settle, name="settle"),
    path(order + "test-dispute/open/", orders.open_test_dispute, name="open_test_dispute"),
    path(order + "test-dispute/won/", orders.close_test_dispute_won, name="close_test_dispute_won"),
    path(
        order + "test-dispute/lost/", orders.close_test_dispute_lost, name="close_test_dispute_lost"
    ),
    path(
        order + "test-radar/warning/",
        orders.raise_test_fraud_warning,
        name="raise_test_fraud_warning",
    ),
    path(order + "test-radar/review/open/", orders.open_test_review, name="open_test_review"),
    path(
        order + "test-radar/review/approve/", orders.approve_test_review, name="approve_test_review"
    ),
    path(license + "suspend/", licenses.suspend_license, name="suspend_license"),
    path(license + "reinstate/", licenses.reinstate_license, name="reinstate_license"),
    path(license + "reveal/", licenses.reveal_key, name="reveal_key"),
    path(license + "reset-devices/", licenses.reset_activations, name="reset_activations"),
    path(order + "emails/<int:pk>/send-again/", licenses.send_email_again, name="send_email_again"),
    path("deliveries/<int:pk>/resend/", notifications.resend_delivery, name="resend_delivery"),
    path("notifications/", notifications.notifications, name="notifications"),
    path("notifications/<int:pk>/test/", notifications.test_destination, name="test_destination"),
    path(
        "notifications/<int:pk>/enable/",
        notifications.enable_destination,
        name="enable_destination",
    ),
    path(
        "notifications/<int:pk>/disable/",
        notifications.disable_destination,
        name="disable_destination",
    ),
    path("events/", events.events, name="events"),
    path("fraud-warnings/", radar.fraud_warnings, name="fraud_warnings"),
    path("licenses/", licenses.licenses, name="licenses"),
    path("licenses/import/", licenses.import_keys, name="import_keys"),
    path("settings/", staff_settings.staff_settings, name="settings"),
]
