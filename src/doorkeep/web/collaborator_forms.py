"""The owner's form to invite a collaborator (R41). It checks the shape of
the input; the service decides the rest."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from doorkeep.collaborators.models import CollaboratorRole
from doorkeep.properties.models import Property
from doorkeep.web.forms import ServiceErrorsMixin


class InviteCollaboratorForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {
        "invalid_email": "email",
        "already_member": "email",
        "already_invited": "email",
        "invalid_role": "role",
        "property_not_found": "site",
        "invalid_end": "last_day",
    }

    email = forms.EmailField(label=_("Email address"), max_length=254)
    role = forms.ChoiceField(
        label=_("Role"),
        choices=CollaboratorRole.choices,
        help_text=_(
            "Read only: sees the sites, locks, keys, event log, residents and badges, and "
            "changes nothing. Manager: also issues and takes back keys and keeps the residents "
            "and badges."
        ),
    )
    site = forms.ChoiceField(label=_("Site"), required=False)
    last_day = forms.DateField(
        label=_("Last day (optional)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("The access ends at the end of that day. Empty: no end."),
    )

    def __init__(
        self, *args: Any, sites: Iterable[Property], managers: bool = True, **kwargs: Any
    ) -> None:
        """``managers``: offer the manager role (False without building
        management; the service refuses it then)."""
        kwargs.setdefault("auto_id", "id_invite_%s")
        super().__init__(*args, **kwargs)
        if not managers:
            role = self.fields["role"]
            role.choices = [(CollaboratorRole.READ_ONLY.value, CollaboratorRole.READ_ONLY.label)]  # type: ignore[attr-defined]
            role.help_text = _(
                "Read only: sees the sites, locks, keys, event log, residents and badges, and "
                "changes nothing."
            )
        self.fields["site"].choices = [  # type: ignore[attr-defined]
            ("", _("Every site")),
            *((str(p.pk), p.name) for p in sites),
        ]

    def property_id(self) -> int | None:
        value = self.cleaned_data.get("site") or ""
        return int(value) if value else None

    def last_day_value(self) -> date | None:
        value: date | None = self.cleaned_data.get("last_day")
        return value
