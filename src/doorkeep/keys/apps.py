from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "doorkeep.keys"
    label = "keys"
