from django.urls import path

from . import views

app_name = "orders"

urlpatterns = [
    path("", views.catalog, name="catalog"),
    path("checkout/success/", views.success, name="success"),
    path("checkout/cancel/<str:public_id>/", views.cancel, name="cancel"),
    path("checkout/<slug:slug>/", views.checkout, name="checkout"),
    path("orders/<str:public_id>/", views.order_detail, name="detail"),
    path("stripe/webhook/", views.stripe_webhook, name="stripe_webhook"),
    path("test-gateway/checkout/<str:session_id>/", views.test_checkout, name="test_checkout"),
]
