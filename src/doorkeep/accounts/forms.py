"""What django-allauth's sign-up form asks beyond the address and password
(settings.ACCOUNT_SIGNUP_FORM_CLASS): the person's name, which the lock
owners, residents and guests they deal with see instead of their address.
(allauth imports this module while it builds its own forms: it must not
import them; the sign-in form is in signin.py.)"""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from doorkeep.accounts.models import User


class SignupForm(forms.Form):
    field_order = ("name", "email", "password1", "password2")

    name = forms.CharField(
        label=_("Your name"),
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "name", "placeholder": _("Your name")}),
    )

    def clean_name(self) -> str:
        name = " ".join(str(self.cleaned_data["name"]).split())
        if not name:
            raise forms.ValidationError(_("Type your name."), code="name_required")
        return name

    def signup(self, request: HttpRequest, user: User, **kwargs: Any) -> None:
        """allauth calls this once the account exists."""
        user.name = self.cleaned_data["name"]
        user.save(update_fields=["name"])
