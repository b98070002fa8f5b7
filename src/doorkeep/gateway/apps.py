from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "doorkeep.gateway"
    label = "gateway"
