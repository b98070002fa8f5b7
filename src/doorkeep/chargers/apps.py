from django.apps import AppConfig


class ChargersConfig(AppConfig):
    name = "doorkeep.chargers"
    label = "chargers"
