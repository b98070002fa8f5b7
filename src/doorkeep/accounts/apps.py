from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "doorkeep.accounts"
    label = "accounts"

    def ready(self) -> None:
        from doorkeep.accounts import signals  # noqa: F401
