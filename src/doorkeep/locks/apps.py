from django.apps import AppConfig


class LocksConfig(AppConfig):
    name = "doorkeep.locks"
    label = "locks"
