from django.apps import AppConfig


class GuestsConfig(AppConfig):
    name = "doorkeep.guests"
    label = "guests"
    verbose_name = "Guests"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import pre_delete

        from doorkeep.guests.services import end_shares_of

        pre_delete.connect(end_shares_of, sender=get_user_model(), dispatch_uid="guests-end-shares")
