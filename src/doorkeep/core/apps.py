from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "doorkeep.core"
    label = "core"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from doorkeep.core.threads import close_at_thread_end

        connection_created.connect(close_at_thread_end, dispatch_uid="doorkeep.close_at_thread_end")
