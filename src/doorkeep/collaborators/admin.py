from django.contrib import admin

from doorkeep.collaborators.models import CollaboratorInvitation


@admin.register(CollaboratorInvitation)
class CollaboratorInvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organization", "role", "property", "status", "created_at"]
    list_filter = ["status", "role"]
    search_fields = ["email", "organization__name"]
    raw_id_fields = ["organization", "property", "invited_by", "accepted_by"]
    readonly_fields = ["token_digest"]
