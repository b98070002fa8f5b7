import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "doorkeep.settings")
django_application = get_wsgi_application()

from doorkeep.api.fast import FastUnlock  # noqa: E402 - needs the apps loaded first
from doorkeep.core.logs import RequestIds  # noqa: E402
from doorkeep.core.memory import settle_if_served  # noqa: E402

# POST /api/v1/entries/{id}/unlock with a bearer token is answered in front of
# Django's request stack (doorkeep/api/fast.py); everything else by Django.
front_door = FastUnlock(django_application)
# Every request, that one too, has a request id for the logs (core/logs.py).
application = RequestIds(front_door)

# A web worker of `doorkeep serve`: what is loaded now stays; the garbage
# collector stops walking it (doorkeep/core/memory.py).
settle_if_served()
