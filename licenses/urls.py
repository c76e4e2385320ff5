from django.urls import path

from . import views

app_name = "licenses"

urlpatterns = [
    path("api/licenses/validate", views.validate, name="validate"),
]
