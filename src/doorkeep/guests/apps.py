from django.apps import AppConfig


class GuestsConfig(AppConfig):
    name = "doorkeep.guests"
    label = "guests"
    verbose_name = "Guests"
