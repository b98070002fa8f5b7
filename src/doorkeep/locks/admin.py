from django.contrib import admin

from doorkeep.locks.models import Lock


@admin.register(Lock)
class LockAdmin(admin.ModelAdmin):
    list_display = [
        "serial",
        "name",
        "organization",
        "entry",
        "credential_version",
        "first_registered_at",
        "registered_at",
    ]
    search_fields = ["serial", "name", "organization__name"]
    list_filter = ["model_name"]
    readonly_fields = [
        "claim_secret_hash",
        "credential_version",
        "first_registered_at",
        "registered_at",
    ]
