from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "doorkeep.billing"
    label = "billing"
