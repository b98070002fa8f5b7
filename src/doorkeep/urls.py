from django.contrib import admin
from django.urls import include, path

from doorkeep.api import api

urlpatterns = [
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("doorkeep.web.urls")),
]
