from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "doorkeep.accounts"
    label = "accounts"

    def ready(self) -> None:
        from doorkeep.accounts import mfa, signals  # noqa: F401

        mfa.connect()
