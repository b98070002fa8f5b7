from django.apps import AppConfig


class InstallationsConfig(AppConfig):
    name = "doorkeep.installations"
    label = "installations"
