from django.urls import path

from . import pages, views

app_name = "mgmt"

order = "orders/<str:number>/"
license = order + "licenses/<int:pk>/"

urlpatterns = [
    path("", pages.overview, name="overview"),
    path("orders/", views.orders, name="orders"),
    path("orders/export.csv", views.export, name="export"),
    path(order, views.order, name="order"),
    path(order + "complete/", views.complete, name="complete"),
    path(order + "refund/", views.refund, name="refund"),
    path(order + "retry/", views.retry, name="retry"),
    path(order + "resend-keys/", views.resend_keys, name="resend_keys"),
    path(order + "settle/", views.settle, name="settle"),
    path(license + "suspend/", views.suspend_license, name="suspend_license"),
    path(license + "reinstate/", views.reinstate_license, name="reinstate_license"),
    path(license + "reveal/", views.reveal_key, name="reveal_key"),
    path("deliveries/<int:pk>/resend/", views.resend_delivery, name="resend_delivery"),
    path("notifications/", pages.notifications, name="notifications"),
    path("notifications/<int:pk>/test/", pages.test_destination, name="test_destination"),
    path("notifications/<int:pk>/enable/", pages.enable_destination, name="enable_destination"),
    path("notifications/<int:pk>/disable/", pages.disable_destination, name="disable_destination"),
    path("events/", pages.events, name="events"),
    path("licenses/", pages.licenses, name="licenses"),
    path("licenses/import/", pages.import_keys, name="import_keys"),
]
