from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "doorkeep.notify"
    label = "notify"
