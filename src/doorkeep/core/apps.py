from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "doorkeep.core"
    label = "core"
