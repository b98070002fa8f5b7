from typing import Any

from django.apps import AppConfig


def create_cache_table(using: str = "default", **kwargs: Any) -> None:
    """Django's cache is a table when it is the database cache (settings.CACHES):
    made after every `migrate`, if it is not there yet."""
    from django.core.management import call_command

    call_command("createcachetable", database=using, verbosity=0)


class CoreConfig(AppConfig):
    name = "doorkeep.core"
    label = "core"

    def ready(self) -> None:
        from django.core.signals import request_started
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_migrate

        from doorkeep.core.threads import close_at_thread_end, close_orphans

        connection_created.connect(close_at_thread_end, dispatch_uid="doorkeep.close_at_thread_end")
        request_started.connect(close_orphans, dispatch_uid="doorkeep.close_orphans")
        post_migrate.connect(create_cache_table, sender=self, dispatch_uid="doorkeep.cache_table")
