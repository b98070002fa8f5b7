from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "doorkeep.events"
    label = "events"
