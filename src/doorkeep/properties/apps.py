from django.apps import AppConfig


class PropertiesConfig(AppConfig):
    name = "doorkeep.properties"
    label = "properties"
