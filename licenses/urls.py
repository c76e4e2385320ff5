from django.urls import path

from . import views

app_name = "licenses"

urlpatterns = [
    path("api/licenses/validate", views.validate, name="validate"),
    path("api/licenses/activate", views.activate, name="activate"),
    path("api/licenses/deactivate", views.deactivate, name="deactivate"),
    path("api/licenses/public-key", views.public_key, name="public_key"),
]
