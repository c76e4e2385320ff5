from django.urls import path

from config.urls import urlpatterns as shop_urlpatterns

from . import views

urlpatterns = [
    path("bench/bare/", views.bare, name="bench_bare"),
    path("bench/minimal/", views.minimal, name="bench_minimal"),
    *shop_urlpatterns,
]
