from django.apps import AppConfig


class LaundryConfig(AppConfig):
    name = "doorkeep.laundry"
    label = "laundry"
