from django.contrib import admin

from doorkeep.notify.models import (
    Notification,
    NotificationPreference,
    OutboxMessage,
    PushSubscription,
    WebhookEndpoint,
)


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "kind", "title", "created_at", "read_at"]
    list_filter = ["kind"]
    search_fields = ["user__email", "title"]
    raw_id_fields = ["user"]


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "email_guest_unlock"]
    raw_id_fields = ["user"]


@admin.register(PushSubscription)
class PushSubscriptionAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "user_agent", "created_at", "last_success_at"]
    exclude = ["auth"]  # a secret, stored encrypted: never shown
    search_fields = ["user__email"]
    raw_id_fields = ["user"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["id", "organization", "url", "active", "created_at"]
    list_filter = ["active"]
    exclude = ["secret"]


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    """Read-only: what was sent, what is waiting, what gave up and why."""

    list_display = [
        "msg_id",
        "channel",
        "event_type",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "gave_up_at",
        "last_status",
    ]
    list_filter = ["channel", "event_type"]
    search_fields = ["msg_id"]
    readonly_fields = [f.name for f in OutboxMessage._meta.get_fields() if f.concrete]

    def has_add_permission(self, request: object) -> bool:
        return False
