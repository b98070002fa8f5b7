from django.contrib import admin

from doorkeep.keys.models import Credential, Key, Person


@admin.register(Person)
class PersonAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "organization", "user"]
    search_fields = ["name", "email"]


@admin.register(Key)
class KeyAdmin(admin.ModelAdmin):
    """Read-only: keys change through the services, which keep locks in step."""

    list_display = ["id", "lock", "person", "holder_organization", "issued_at", "revoked_at"]
    search_fields = ["lock__serial", "person__name", "holder_organization__name"]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    list_display = ["person", "kind", "display", "created_at", "deactivated_at"]
    readonly_fields = ["lookup"]
    search_fields = ["person__name", "display"]
