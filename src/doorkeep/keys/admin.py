from typing import Any

from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet

from doorkeep.gateway.services import credential_changed
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


LIST_FIELDS = frozenset({"person", "kind", "deactivated_at"})  # what locks' lists depend on


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    """Switching a credential off (or on, or deleting it) changes the lists of
    the locks it opens: their versions go up and the gateways push the change."""

    list_display = ["person", "kind", "display", "created_at", "deactivated_at"]
    readonly_fields = ["lookup"]
    search_fields = ["person__name", "display"]

    def save_model(self, request: Any, obj: Credential, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and LIST_FIELDS.intersection(form.changed_data):
            credential_changed(obj.pk)

    def delete_model(self, request: Any, obj: Credential) -> None:
        with transaction.atomic():
            credential_changed(obj.pk)
            super().delete_model(request, obj)

    def delete_queryset(self, request: Any, queryset: QuerySet[Credential]) -> None:
        with transaction.atomic():
            for pk in queryset.values_list("pk", flat=True):
                credential_changed(pk)
            super().delete_queryset(request, queryset)
