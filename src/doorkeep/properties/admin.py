from django.contrib import admin

from doorkeep.properties.models import Entry, Property


class EntryInline(admin.TabularInline):
    model = Entry
    extra = 0


@admin.register(Property)
class PropertyAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "address", "timezone"]
    search_fields = ["name", "address", "organization__name"]
    inlines = [EntryInline]
