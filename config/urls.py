from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from workers.health import healthz

from .views import favicon

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon),
    path("account/", include("dashboards.account.urls")),
    path(f"{settings.MGMT_PATH}/", include("dashboards.mgmt.urls")),
    path("", include("licenses.urls")),
    path("", include("orders.urls")),
]
