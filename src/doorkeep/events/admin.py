from django.contrib import admin

from doorkeep.events.models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """The log is append-only: view and search, never change."""

    list_display = ["occurred_at", "kind", "reason", "organization", "lock", "person", "summary"]
    list_filter = ["kind"]
    search_fields = ["summary", "lock__serial"]
    date_hierarchy = "occurred_at"

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False
