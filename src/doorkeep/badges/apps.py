from django.apps import AppConfig


class BadgesConfig(AppConfig):
    name = "doorkeep.badges"
    label = "badges"
