from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "doorkeep.web"
    label = "web"
