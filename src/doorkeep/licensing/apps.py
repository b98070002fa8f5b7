from django.apps import AppConfig


class LicensingConfig(AppConfig):
    name = "doorkeep.licensing"
    label = "licensing"
