from django.apps import AppConfig


class ResidentsConfig(AppConfig):
    name = "doorkeep.residents"
    label = "residents"
