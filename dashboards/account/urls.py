from django.urls import path

from . import views

app_name = "account"

urlpatterns = [
    path("", views.orders, name="orders"),
    path("login/", views.login, name="login"),
    path("login/<str:token>/", views.link, name="link"),
    path("logout/", views.logout, name="logout"),
    path("orders/<str:number>/", views.order, name="order"),
    path("orders/<str:number>/pay-again/", views.order_pay_again, name="pay_again"),
    path("orders/<str:number>/resend-keys/", views.order_resend_keys, name="resend_keys"),
    path(
        "orders/<str:number>/devices/<uuid:device>/deactivate/",
        views.deactivate_device,
        name="deactivate_device",
    ),
    path("orders/<str:number>/licenses/<uuid:license>/renew/", views.renew_license, name="renew"),
]
