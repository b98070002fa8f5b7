import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "doorkeep.settings")
django_application = get_wsgi_application()

from doorkeep.api.fast import FastUnlock  # noqa: E402 - needs the apps loaded first

# POST /api/v1/entries/{id}/unlock with a bearer token is answered in front of
# Django's request stack (doorkeep/api/fast.py); everything else by Django.
application = FastUnlock(django_application)
