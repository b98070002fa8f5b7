"""Forms of the notification pages: a person's choices and webhook endpoints."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from doorkeep.notify.models import WebhookEvent
from doorkeep.web.forms import ServiceErrorsMixin


class PreferencesForm(forms.Form):
    email_guest_unlock = forms.BooleanField(
        label=_("Email me when a guest opens a door I shared"), required=False
    )


class WebhookForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {"invalid_url": "url", "unknown_event_type": "event_types"}

    url = forms.CharField(
        label=_("URL"),
        max_length=500,
        help_text=_("Where Doorkeep POSTs the events, for example https://example.com/hooks."),
        widget=forms.URLInput(attrs={"placeholder": "https://", "inputmode": "url"}),
    )
    description = forms.CharField(label=_("Description"), max_length=200, required=False)
    event_types = forms.MultipleChoiceField(
        label=_("Events"),
        choices=WebhookEvent.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every event, also those added later."),
    )
