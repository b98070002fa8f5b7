"""allauth's sign-in form as Doorkeep renders it (settings.ACCOUNT_FORMS)."""

from __future__ import annotations

from typing import Any

from allauth.account.forms import LoginForm
from django.core.exceptions import NON_FIELD_ERRORS

# The id of the error list of a failed sign-in (Django renders a list's id as
# "<field_id>_error"), which the fields point to with aria-describedby.
SIGN_IN_ERROR_ID = "signin_error"


class SignInForm(LoginForm):
    """The sign-in form. After a failed sign-in (a wrong address or password
    is an error of the whole form, not of one field) the address and the
    password are marked invalid and described by the error, and the address
    has the focus, so that a screen reader says what went wrong and the
    person can type again at once (WCAG 3.3.1, 2.4.3)."""

    def full_clean(self) -> None:
        super().full_clean()
        if not self.is_bound or not self._errors:
            return
        invalid = [name for name in self.fields if name in self._errors]
        problem = self._errors.get(NON_FIELD_ERRORS)
        if problem:
            for name in ("login", "password"):
                field = self[name]
                described = [SIGN_IN_ERROR_ID]
                if field.help_text:
                    described.append(f"{field.auto_id}_helptext")
                field.field.widget.attrs["aria-invalid"] = "true"
                field.field.widget.attrs["aria-describedby"] = " ".join(described)
            invalid = invalid or ["login"]
        self.fields[invalid[0]].widget.attrs["autofocus"] = True

    def get_context(self) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context()
        if context["errors"]:  # the form's own errors, shown above the fields
            context["errors"].field_id = SIGN_IN_ERROR_ID.removesuffix("_error")
        return context
