from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "doorkeep.core"
    label = "core"

    def ready(self) -> None:
        from django.core.signals import request_started
        from django.db.backends.signals import connection_created

        from doorkeep.core.threads import close_at_thread_end, close_orphans

        connection_created.connect(close_at_thread_end, dispatch_uid="doorkeep.close_at_thread_end")
        request_started.connect(close_orphans, dispatch_uid="doorkeep.close_orphans")
