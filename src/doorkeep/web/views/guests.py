"""Guests in the web UI (R20-R28): the building manager's guest settings and
panels, the resident's invitations, the invitation link, and the guest's app
(pages made for a phone: locations, Guest Key, presence verification)."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.core.errors import DomainError, NotFound
from doorkeep.gateway import remote
from doorkeep.guests import presence, selectors, services, tags
from doorkeep.guests.models import Invitation, InvitationStatus, Panel, PanelTag
from doorkeep.properties.models import Entry, Property
from doorkeep.web.context import Roles
from doorkeep.web.upgrade_offers import building_management_offer
from doorkeep.web.views.common import current_user, page_view

# --- forms ---------------------------------------------------------------------


class PolicyForm(forms.Form):
    sharing_enabled = forms.BooleanField(
        label=gettext_lazy("Residents may share entries with guests"), required=False
    )
    shareable = forms.MultipleChoiceField(
        label=gettext_lazy("Entries residents may share"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    max_guests_per_resident = forms.IntegerField(
        label=gettext_lazy("Most guests per resident"), min_value=1, max_value=100, initial=5
    )
    require_presence = forms.BooleanField(
        label=gettext_lazy("Guests verify their presence at a panel before the first unlock"),
        required=False,
    )
    reverify_after_days = forms.IntegerField(
        label=gettext_lazy("Verify again after this many days without use (empty: never)"),
        min_value=1,
        max_value=365,
        required=False,
    )
    require_tag = forms.BooleanField(
        label=gettext_lazy(
            "Guests verify only by tapping an NTAG 424 DNA panel (typed codes are refused)"
        ),
        required=False,
    )

    def __init__(self, *args: Any, entries: list[Entry], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["shareable"].choices = [(str(e.pk), e.name) for e in entries]  # type: ignore[attr-defined]


class InviteForm(forms.Form):
    email = forms.EmailField(label=gettext_lazy("Guest's email address"), max_length=254)
    entries = forms.MultipleChoiceField(
        label=gettext_lazy("Entries to share"), widget=forms.CheckboxSelectMultiple
    )
    ends_on = forms.DateField(
        label=gettext_lazy("Access ends (optional)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=gettext_lazy("At the end of this day, in the property's time zone."),
    )

    def __init__(self, *args: Any, entries: list[Entry], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["entries"].choices = [(str(e.pk), e.name) for e in entries]  # type: ignore[attr-defined]


class PanelForm(forms.Form):
    entry = forms.TypedChoiceField(label=gettext_lazy("Entry"), coerce=int)
    name = forms.CharField(label=gettext_lazy("Panel name"), max_length=100, initial="Panel")
    tag = forms.ChoiceField(
        label=gettext_lazy("Kind"), choices=PanelTag.choices, initial=PanelTag.CODE, required=False
    )

    def __init__(self, *args: Any, entries: list[Entry], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["entry"].choices = [(e.pk, e.name) for e in entries]  # type: ignore[attr-defined]


class CodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code on the panel"),
        max_length=20,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "pattern": "[0-9 ]*"}
        ),
    )
    panel = forms.IntegerField(required=False, widget=forms.HiddenInput)


# --- the building manager: guest settings and panels -----------------------------


def _settings_page(
    request: HttpRequest,
    property_id: int,
    *,
    status: int = 200,
    error: str = "",
    policy_form: PolicyForm | None = None,
    panel_form: PanelForm | None = None,
    new_panel: dict[str, Any] | None = None,
) -> HttpResponse:
    user = current_user(request)
    prop = Property.objects.select_related("organization").filter(pk=property_id).first()
    if prop is None:
        raise NotFound(_("Property not found."))
    policy.require(
        user,
        policy.Action.MANAGE_PROPERTIES,
        prop.organization_id,
        what=_("Property"),
        property_id=prop.pk,
    )
    entries = list(prop.entries.all())
    rules = services.policy_of(prop.pk)
    offer = building_management_offer(
        user,
        prop.organization,
        _("Guest sharing and entry panels"),
        reverse("web:guest_settings", kwargs={"property_id": prop.pk}),
        anchor="guests-offer",
    )
    # Without building management the policy form is shown only while
    # sharing is on, to switch it off; panels are listed, to remove them.
    if offer is not None and not rules.sharing_enabled:
        policy_form = None
    elif policy_form is None:
        policy_form = PolicyForm(
            entries=entries,
            initial={
                "sharing_enabled": rules.sharing_enabled,
                "shareable": [str(pk) for pk in services.shareable_entry_ids(rules)]
                if rules.pk
                else [],
                "max_guests_per_resident": rules.max_guests_per_resident,
                "require_presence": rules.require_presence,
                "reverify_after_days": rules.reverify_after_days,
                "require_tag": rules.require_tag,
            },
        )
    response = render(
        request,
        "web/guests/settings.html",
        {
            "prop": prop,
            "error": error,
            "policy_form": policy_form,
            "panel_form": None if offer else panel_form or PanelForm(entries=entries),
            "offer": offer,
            "panels": list(Panel.objects.filter(entry__property=prop).select_related("entry")),
            "invitations": selectors.invitations_at(user, prop.pk),
            "new_panel": new_panel,
        },
        status=status,
    )
    add_never_cache_headers(response)  # may show a panel's secret
    return response


@require_GET
@page_view
def guest_settings(request: HttpRequest, property_id: int) -> HttpResponse:
    return _settings_page(request, property_id)


@require_POST
@page_view
def save_guest_policy(request: HttpRequest, property_id: int) -> HttpResponse:
    prop = Property.objects.filter(pk=property_id).first()
    entries = list(prop.entries.all()) if prop else []
    form = PolicyForm(request.POST, entries=entries)
    if not form.is_valid():
        return _settings_page(request, property_id, status=400, policy_form=form)
    data = form.cleaned_data
    spec = services.PolicySpec(
        sharing_enabled=data["sharing_enabled"],
        shareable_entry_ids=[int(pk) for pk in data["shareable"]],
        max_guests_per_resident=data["max_guests_per_resident"],
        require_presence=data["require_presence"],
        reverify_after_days=data["reverify_after_days"],
        require_tag=data["require_tag"],
    )
    try:
        services.set_policy(current_user(request), property_id, spec)
    except DomainError as exc:
        return _settings_page(
            request, property_id, status=exc.status, error=exc.message, policy_form=form
        )
    messages.success(request, _("The guest policy is saved."))
    return redirect("web:guest_settings", property_id=property_id)


@require_POST
@page_view
def add_panel(request: HttpRequest, property_id: int) -> HttpResponse:
    prop = Property.objects.filter(pk=property_id).first()
    form = PanelForm(request.POST, entries=list(prop.entries.all()) if prop else [])
    if not form.is_valid():
        return _settings_page(request, property_id, status=400, panel_form=form)
    actor, entry_id = current_user(request), form.cleaned_data["entry"]
    name = form.cleaned_data["name"]
    try:
        if form.cleaned_data["tag"] == PanelTag.NTAG424:
            panel, keys = tags.add_tag_panel(actor, entry_id, name)
            shown: dict[str, Any] = {"panel": panel, "tag_keys": keys}
        else:
            panel, secret = presence.add_panel(actor, entry_id, name)
            shown = {
                "panel": panel,
                "secret": secret,
                "uri": presence.provisioning_uri(panel, secret),
                # The placeholder as the panel's firmware fills it in, not URL-encoded.
                "tag_url": presence.tag_url(panel.entry_id, panel.pk, "{code}").replace(
                    "%7Bcode%7D", "{code}"
                ),
            }
    except DomainError as exc:
        return _settings_page(request, property_id, status=exc.status, error=exc.message)
    return _settings_page(request, property_id, new_panel=shown)


@require_POST
@page_view
def remove_panel(request: HttpRequest, property_id: int, panel_id: int) -> HttpResponse:
    presence.remove_panel(current_user(request), panel_id)
    messages.success(request, _("The panel is removed; its codes no longer verify anything."))
    return redirect("web:guest_settings", property_id=property_id)


# --- the resident: invitations -----------------------------------------------------


def _end_of_day(day: Any, prop: Property) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=ZoneInfo(prop.timezone))


def _shareable_for(user: User, prop: Property) -> list[Entry]:
    rules = services.policy_of(prop.pk)
    allowed = services.shareable_entry_ids(rules) & services.resident_entry_ids(user, prop.pk)
    return [e for e in prop.entries.all() if e.pk in allowed]


def _residents_page(
    request: HttpRequest,
    *,
    status: int = 200,
    error: str = "",
    failed: tuple[int, InviteForm] | None = None,
) -> HttpResponse:
    user = current_user(request)
    sent = selectors.invitations_sent(user)
    places = []
    for prop in services.resident_properties(user):
        rules = services.policy_of(prop.pk)
        entries = _shareable_for(user, prop)
        form: InviteForm | None = None
        if rules.sharing_enabled and entries:
            form = failed[1] if failed and failed[0] == prop.pk else InviteForm(entries=entries)
        places.append(
            {
                "prop": prop,
                "rules": rules,
                "form": form,
                "invitations": [inv for inv in sent if inv.property_id == prop.pk],
            }
        )
    shown = {prop.pk for prop in services.resident_properties(user)} if failed else set()
    if failed and failed[0] not in shown:  # no form to show the error on
        error = error or " ".join(str(e) for e in failed[1].non_field_errors())
    return render(
        request,
        "web/guests/residents.html",
        {"nav": "guests", "places": places, "error": error},
        status=status,
    )


@require_GET
@page_view
def guests_home(request: HttpRequest) -> HttpResponse:
    return _residents_page(request)


@require_POST
@page_view
def invite(request: HttpRequest, property_id: int) -> HttpResponse:
    user = current_user(request)
    prop = Property.objects.filter(pk=property_id).first()
    if prop is None or not (
        services.resident_entry_ids(user, prop.pk)
        or policy.can(user, policy.Action.VIEW, prop.organization_id, prop.pk)
        or services.is_guest_at(user, prop.pk)
    ):
        raise NotFound(_("Property not found."))  # before looking at the form: no oracle
    # The entries this resident may share, as on the page: a form shown again
    # after an error must not offer the others. With none (a guest, sharing
    # off), the invitation service says why it cannot be.
    shareable = _shareable_for(user, prop)
    form = InviteForm(request.POST, entries=shareable or list(prop.entries.all()))
    if not form.is_valid():
        return _residents_page(request, status=400, failed=(prop.pk, form))
    ends_on = form.cleaned_data["ends_on"]
    try:
        sent = services.invite(
            user,
            prop.pk,
            form.cleaned_data["email"],
            [int(pk) for pk in form.cleaned_data["entries"]],
            ends_at=_end_of_day(ends_on, prop) if ends_on else None,
        )
    except NotFound:
        raise
    except DomainError as exc:
        form.add_error(None, exc.message)
        return _residents_page(request, status=exc.status, failed=(prop.pk, form))
    if sent.emailed:
        messages.success(
            request, _("Invitation sent to %(email)s.") % {"email": sent.invitation.email}
        )
    else:
        messages.warning(
            request,
            _("The invitation is saved, but the email could not be sent. Try Resend later."),
        )
    return redirect("web:guests")


@require_POST
@page_view
def resend_invitation(request: HttpRequest, invitation_id: int) -> HttpResponse:
    try:
        sent = services.resend(current_user(request), invitation_id)
    except NotFound:
        raise
    except DomainError as exc:
        return _residents_page(request, status=exc.status, error=exc.message)
    if sent.emailed:
        messages.success(request, _("Sent again to %(email)s.") % {"email": sent.invitation.email})
    else:
        messages.warning(request, _("The email could not be sent. Try again later."))
    return redirect("web:guests")


@require_POST
@page_view
def revoke_invitation(request: HttpRequest, invitation_id: int) -> HttpResponse:
    try:
        invitation = services.revoke(current_user(request), invitation_id)
    except NotFound:
        raise
    except DomainError as exc:
        return _residents_page(request, status=exc.status, error=exc.message)
    messages.success(
        request,
        _("The invitation of %(email)s is revoked; the shared entries no longer open for them.")
        % {"email": invitation.email},
    )
    nxt = request.POST.get("next", "")
    return redirect(nxt if nxt.startswith("/properties/") else reverse("web:guests"))


@require_GET
@page_view
def invitation_detail(request: HttpRequest, invitation_id: int) -> HttpResponse:
    user = current_user(request)
    invitation = selectors.invitation_for(user, invitation_id)
    return render(
        request,
        "web/guests/invitation.html",
        {
            "nav": "guests",
            "invitation": invitation,
            "events": selectors.guest_events(user, invitation_id),
        },
    )


# --- the invitation link -------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def invitation_link(request: HttpRequest, token: str) -> HttpResponse:
    """R21-R23. Anyone may open the link; answering needs the invited account."""
    try:
        invitation = services.read_token(token)
    except DomainError as exc:  # used, declined, withdrawn, expired, or never valid
        return render(
            request,
            "web/guests/invitation_gone.html",
            {"message": exc.message, "status": exc.status},
            status=exc.status,
        )
    user = request.user if isinstance(request.user, User) else None
    context: dict[str, Any] = {
        "invitation": invitation,
        "inviter": invitation.inviter.name or invitation.inviter.email,
        "entries": list(invitation.entries.all()),
        "token": token,
    }
    if user is None:
        context["next"] = request.get_full_path()
        return render(request, "web/guests/invitation_link.html", context)
    try:
        services.check_account(user, invitation)
    except DomainError as exc:
        context["wrong_account"] = exc.message
        return render(request, "web/guests/invitation_link.html", context, status=exc.status)
    if request.method != "POST":
        return render(request, "web/guests/invitation_link.html", context)
    answer = request.POST.get("answer")
    try:
        if answer == "accept":
            services.accept(user, invitation.pk, nonce=invitation.nonce)
        elif answer == "decline":
            services.decline(user, invitation.pk, nonce=invitation.nonce)
        else:
            context["error"] = _("Choose Accept or Decline.")
            return render(request, "web/guests/invitation_link.html", context, status=400)
    except DomainError as exc:
        context["error"] = exc.message
        return render(request, "web/guests/invitation_link.html", context, status=exc.status)
    if answer == "decline":
        messages.info(request, _("You declined the invitation."))
        return redirect("web:guest_home")
    messages.success(
        request,
        _("Welcome! %(name)s shared entries of %(property)s with you.")
        % {"name": context["inviter"], "property": invitation.property.name},
    )
    return redirect(f"{reverse('web:guest_home')}?location={invitation.property_id}")


@require_POST
def sign_out_for_invitation(request: HttpRequest, token: str) -> HttpResponse:
    """Sign out, then come back to the invitation to sign in with the right address."""
    logout(request)
    return redirect("web:invitation_link", token=token)


# --- the guest's app -------------------------------------------------------------------


def _guest_home(request: HttpRequest, *, status: int = 200, error: str = "") -> HttpResponse:
    user = current_user(request)
    places = selectors.locations(user)
    chosen = None
    wanted = request.GET.get("location", "")
    if places:
        chosen = next((p for p in places if str(p.property_id) == wanted), places[0])
    return render(
        request,
        "web/guests/guest_home.html",
        {
            "nav": "guest",
            "pending": selectors.pending_for(user),
            "places": places,
            "chosen": chosen,
            "error": error,
        },
        status=status,
    )


@require_GET
@page_view
def guest_home(request: HttpRequest) -> HttpResponse:
    """R24: the shared location, a location switcher, the Guest Key tile."""
    return _guest_home(request)


@require_POST
@page_view
def answer_invitation(request: HttpRequest, invitation_id: int, answer: str) -> HttpResponse:
    user = current_user(request)
    if answer not in ("accept", "decline"):
        raise NotFound(_("Not found."))
    try:
        if answer == "accept":
            invitation = services.accept(user, invitation_id)
        else:
            invitation = services.decline(user, invitation_id)
    except NotFound:
        raise
    except DomainError as exc:
        return _guest_home(request, status=exc.status, error=exc.message)
    if invitation.status == InvitationStatus.ACCEPTED:
        messages.success(request, _("Accepted. Your Guest Key is ready."))
        return redirect(f"{reverse('web:guest_home')}?location={invitation.property_id}")
    messages.info(request, _("You declined the invitation."))
    return redirect("web:guest_home")


def _location(user: User, property_id: int) -> selectors.Location:
    place = next((p for p in selectors.locations(user) if p.property_id == property_id), None)
    if place is None:
        raise NotFound(_("Location not found."))
    return place


def _guest_key_page(
    request: HttpRequest, property_id: int, *, status: int = 200, error: str = ""
) -> HttpResponse:
    user = current_user(request)
    return render(
        request,
        "web/guests/guest_key.html",
        {"nav": "guest", "place": _location(user, property_id), "error": error},
        status=status,
    )


@require_GET
@page_view
def guest_key(request: HttpRequest, property_id: int) -> HttpResponse:
    """R25: the shared entries, each with an unlock button."""
    return _guest_key_page(request, property_id)


def _guest_entry(user: User, entry_id: int) -> tuple[Entry, selectors.Location]:
    entry = Entry.objects.filter(pk=entry_id).first()
    if entry is None:
        raise NotFound(_("Entry not found."))
    place = _location(user, entry.property_id)
    if entry.pk not in {e["id"] for e in place.entries}:
        raise NotFound(_("Entry not found."))
    return entry, place


@require_POST
@page_view
def guest_unlock(request: HttpRequest, entry_id: int) -> HttpResponse:
    user = current_user(request)
    entry, place = _guest_entry(user, entry_id)
    try:
        remote.remote_unlock(user, entry.pk)
    except presence.PresenceRequired:
        return redirect("web:guest_verify", entry_id=entry.pk)
    except DomainError as exc:  # shown after the redirect: a reload sends nothing again
        messages.error(request, exc.message)
    else:
        messages.success(request, _("%(entry)s is open.") % {"entry": entry.name})
    return redirect("web:guest_key", property_id=place.property_id)


def _verify_page(
    request: HttpRequest,
    entry: Entry,
    place: selectors.Location,
    *,
    form: CodeForm | None = None,
    status: int = 200,
    error: str = "",
) -> HttpResponse:
    return render(
        request,
        "web/guests/verify.html",
        {
            "nav": "guest",
            "entry": entry,
            "place": place,
            "form": form or CodeForm(),
            "error": error,
            "tag_only": services.policy_of(entry.property_id).require_tag,
        },
        status=status,
    )


def _verify_and_open(
    request: HttpRequest, user: User, entry_id: int, code: str, panel_id: int | None
) -> HttpResponse:
    """Verify with the code; on success open the entry and go to the Guest Key.
    A refused code raises its DomainError (the caller shows why)."""
    entry = presence.verify(user, entry_id, code, panel_id=panel_id)
    return open_after_verify(request, user, entry)


def open_after_verify(request: HttpRequest, user: User, entry: Entry) -> HttpResponse:
    """Presence is verified: open the entry and go to the Guest Key."""
    try:
        remote.remote_unlock(user, entry.pk)
    except DomainError as exc:
        messages.warning(
            request,
            _("Presence verified, but %(entry)s did not open: %(reason)s")
            % {"entry": entry.name, "reason": exc.message},
        )
    else:
        messages.success(
            request, _("Presence verified. %(entry)s is open.") % {"entry": entry.name}
        )
    return redirect("web:guest_key", property_id=entry.property_id)


@require_http_methods(["GET", "POST"])
@page_view
def guest_verify(request: HttpRequest, entry_id: int) -> HttpResponse:
    """R27: Verify, "Ready to tap", the phone reads the panel's tag (Web NFC)
    or the guest types the panel's code."""
    user = current_user(request)
    entry, place = _guest_entry(user, entry_id)
    if request.method != "POST":
        return _verify_page(request, entry, place)
    form = CodeForm(request.POST)
    if not form.is_valid():
        return _verify_page(request, entry, place, form=form, status=400)
    try:
        done = _verify_and_open(
            request, user, entry.pk, form.cleaned_data["code"], form.cleaned_data["panel"]
        )
    except NotFound:
        raise
    except DomainError as exc:
        return _verify_page(request, entry, place, form=form, status=exc.status, error=exc.message)
    assert done is not None
    return done


@require_http_methods(["GET", "POST"])
@page_view
def guest_tap(request: HttpRequest) -> HttpResponse:
    """The URL in a panel's NFC tag: a phone without Web NFC opens it in the
    browser. GET asks to confirm (a link must not change anything); POST
    verifies at the entry of the panel that was tapped."""
    user = current_user(request)
    source = request.POST if request.method == "POST" else request.GET
    try:
        entry_id = int(source.get("entry", ""))
        panel_id = int(source.get("panel", ""))
    except ValueError:
        raise NotFound(_("This panel link is incomplete. Tap the panel again.")) from None
    code = source.get("code", "")
    entry = Entry.objects.select_related("property").filter(pk=entry_id).first()
    if entry is None:
        raise NotFound(_("Entry not found."))
    _location(user, entry.property_id)  # a guest at this property, or 404
    context = {"nav": "guest", "entry": entry, "panel_id": panel_id, "code": code}
    if request.method != "POST":
        return render(request, "web/guests/tap.html", context)
    try:
        done = _verify_and_open(request, user, entry.pk, code, panel_id)
    except NotFound:
        raise
    except DomainError as exc:
        context["error"] = exc.message
        return render(request, "web/guests/tap.html", context, status=exc.status)
    assert done is not None
    return done


def _is_guest(user: User) -> bool:
    return Invitation.objects.filter(guest=user, status=InvitationStatus.ACCEPTED).exists() or (
        bool(selectors.pending_for(user))
    )


def is_guest_only(user: User) -> bool:
    """Someone with no organization, but a guest: the locks dashboard has
    nothing for them; their home is the guest app."""
    return not policy.is_member(user) and _is_guest(user)


@require_GET
@page_view
def home(request: HttpRequest) -> HttpResponse:
    """Where signing in lands (R24): the guest app for a guest whose own
    organization has no properties or locks yet (everyone who signs up gets
    one), the locks dashboard for everyone else."""
    user = current_user(request)
    if _is_guest(user) and Roles(user).holds_nothing:
        return redirect("web:guest_home")
    return redirect("web:dashboard")
