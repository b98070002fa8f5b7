from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from doorkeep.api import api
from doorkeep.core import probes

# The admin site signs in through allauth's sign-in (the second factor, the
# limits on wrong passwords), never through Django's own admin form.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]

handler400 = "doorkeep.api.middleware.bad_request"  # JSON under /api/

urlpatterns = [
    path("healthz", probes.healthz, name="healthz"),
    path("readyz", probes.readyz, name="readyz"),
    path("metrics", probes.metrics, name="metrics"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("doorkeep.web.urls")),
    # Browsers and feed readers ask for it at the root whatever the page says.
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
]
