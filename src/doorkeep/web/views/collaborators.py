"""Collaborators (R41): the owner's page (invite, pending invitations, who has
access, when they last signed in, end access in one step) and the invited
person's page behind the emailed link."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from doorkeep import policy
from doorkeep.accounts.models import Membership, Organization, User
from doorkeep.collaborators import services
from doorkeep.collaborators.models import CollaboratorInvitation
from doorkeep.core.errors import DomainError, NotFound, PermissionDenied
from doorkeep.properties.models import Property
from doorkeep.web.collaborator_forms import InviteCollaboratorForm
from doorkeep.web.upgrade_offers import building_management_offer
from doorkeep.web.views.common import _form_or_page_error, current_user, error_page, page_view


@dataclass
class CollaboratorRow:
    membership: Membership
    role: str
    site: str
    last_day: date | None  # the access's last day in the page's time zone
    ended: bool


@dataclass
class InvitationRow:
    invitation: CollaboratorInvitation
    role: str
    site: str
    last_day: date | None


def _last_day(moment: Any, tz: Any) -> date | None:
    if moment is None:
        return None
    return (timezone.localtime(moment, tz) - timedelta(microseconds=1)).date()


def _owned(user: User) -> list[Organization]:
    orgs = list(policy.organizations(user, policy.Action.MANAGE_COLLABORATORS).order_by("name"))
    if not orgs:
        if policy.is_member(user):
            raise PermissionDenied(policy.denial(policy.Action.MANAGE_COLLABORATORS))
        raise NotFound(_("Not found."))
    return orgs


def _chosen(orgs: list[Organization], wanted: Any) -> Organization:
    return next((o for o in orgs if str(o.pk) == str(wanted)), orgs[0])


def _page(
    request: HttpRequest,
    org: Organization,
    orgs: list[Organization],
    *,
    form: InviteCollaboratorForm | None = None,
    status: int = 200,
    error: str = "",
) -> HttpResponse:
    user = current_user(request)
    sites = list(Property.objects.filter(organization=org).order_by("name", "id"))
    tz = services.zone_for(org.pk)
    now = timezone.now()
    rows = []
    for m in services.collaborators(user, org.pk):
        zone = services.zone_for(org.pk, m.property)
        rows.append(
            CollaboratorRow(
                m,
                services.role_label(m.role),
                services.site_label(m.property),
                _last_day(m.ends_at, zone),
                m.ends_at is not None and m.ends_at <= now,
            )
        )
    pending = [
        InvitationRow(
            i,
            services.role_label(i.role),
            services.site_label(i.property),
            _last_day(i.ends_at, services.zone_for(org.pk, i.property)),
        )
        for i in services.invitations(user, org.pk)
        if i.pending
    ]
    offer = building_management_offer(
        user,
        org,
        _("Inviting building managers"),
        f"{reverse('web:collaborators')}?organization={org.pk}#invite",
        anchor="managers-offer",
    )
    return render(
        request,
        "web/collaborators/settings.html",
        {
            "nav": "collaborators",
            "org": org,
            "orgs": orgs,
            "form": form or InviteCollaboratorForm(sites=sites, managers=offer is None),
            "offer": offer,
            "rows": rows,
            "pending": pending,
            "tz": tz,
            "error": error,
        },
        status=status,
    )


@require_GET
@page_view
def collaborators(request: HttpRequest) -> HttpResponse:
    orgs = _owned(current_user(request))
    return _page(request, _chosen(orgs, request.GET.get("organization")), orgs)


def _back(org: Organization) -> HttpResponse:
    return redirect(f"{reverse('web:collaborators')}?organization={org.pk}")


@require_POST
@page_view
def invite(request: HttpRequest, org_id: int) -> HttpResponse:
    user = current_user(request)
    policy.require(user, policy.Action.MANAGE_COLLABORATORS, org_id, what=_("Organization"))
    orgs = _owned(user)
    org = _chosen(orgs, org_id)
    sites = Property.objects.filter(organization=org).order_by("name", "id")
    form = InviteCollaboratorForm(request.POST, sites=sites)
    if not form.is_valid():
        return _page(request, org, orgs, form=form, status=400)
    prop_id = form.property_id()
    last_day = form.last_day_value()
    ends_at = None
    if last_day is not None:
        prop = next((p for p in sites if p.pk == prop_id), None)
        ends_at = services.end_of_day(last_day, services.zone_for(org.pk, prop))
    try:
        sent = services.invite(
            user,
            org.pk,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            property_id=prop_id,
            ends_at=ends_at,
        )
    except DomainError as exc:
        error = _form_or_page_error(form, exc)
        return _page(request, org, orgs, form=form, status=exc.status, error=error)
    email = sent.invitation.email
    if sent.sent:
        messages.success(request, _("An invitation is on its way to %(email)s.") % {"email": email})
    else:
        messages.warning(
            request,
            _(
                "The invitation to %(email)s is saved, but the email could not be sent. Revoke "
                "it and invite again later."
            )
            % {"email": email},
        )
    return _back(org)


@require_POST
@page_view
def revoke_invitation(request: HttpRequest, invitation_id: int) -> HttpResponse:
    user = current_user(request)
    try:
        invitation = services.revoke(user, invitation_id)
    except NotFound:
        raise
    except DomainError as exc:
        found = CollaboratorInvitation.objects.select_related("organization").get(pk=invitation_id)
        orgs = _owned(user)
        return _page(
            request,
            _chosen(orgs, found.organization_id),
            orgs,
            status=exc.status,
            error=exc.message,
        )
    messages.success(
        request, _("The invitation to %(email)s is revoked.") % {"email": invitation.email}
    )
    return _back(invitation.organization)


@require_POST
@page_view
def end_access(request: HttpRequest, org_id: int, membership_id: int) -> HttpResponse:
    user = current_user(request)
    try:
        ended = services.end_access(user, org_id, membership_id)
    except NotFound:
        raise
    except DomainError as exc:
        orgs = _owned(user)
        return _page(request, _chosen(orgs, org_id), orgs, status=exc.status, error=exc.message)
    messages.success(
        request,
        _("The access of %(email)s has ended; they are signed out everywhere.")
        % {"email": ended.user.email},
    )
    return _back(ended.organization)


@require_POST
@page_view
def two_factor(request: HttpRequest, org_id: int) -> HttpResponse:
    """Turn on or off the second factor for managers and collaborators."""
    user = current_user(request)
    required = request.POST.get("require_two_factor") == "on"
    ended = services.require_two_factor(user, org_id, required)
    orgs = _owned(user)
    if required:
        messages.success(
            request,
            _(
                "Managers and collaborators now sign in with a second factor; "
                "%(count)d of them were signed out and add one at their next sign-in."
            )
            % {"count": ended},
        )
    else:
        messages.success(request, _("A second factor is no longer required."))
    return _back(_chosen(orgs, org_id))


# --- the invited person ------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def accept(request: HttpRequest, token: str) -> HttpResponse:
    """Anyone may open the link; accepting needs the account with exactly the
    invited address."""
    try:
        invitation = services.read_token(token)
    except DomainError as exc:
        return error_page(request, exc)
    user = request.user if isinstance(request.user, User) else None
    inviter = invitation.invited_by
    context: dict[str, Any] = {
        "invitation": invitation,
        "inviter": (inviter.name or inviter.email) if inviter else invitation.organization.name,
        "role": services.role_label(invitation.role),
        "site": services.site_label(invitation.property),
        "last_day": _last_day(
            invitation.ends_at,
            services.zone_for(invitation.organization_id, invitation.property),
        ),
        "zone": services.zone_for(invitation.organization_id, invitation.property).key,
        "token": token,
    }
    if user is None:
        context["next"] = request.get_full_path()
        return render(request, "web/collaborators/accept.html", context)
    try:
        services.check_account(user, invitation)
    except DomainError as exc:
        context["wrong_account"] = exc.message
        return render(request, "web/collaborators/accept.html", context, status=exc.status)
    if request.method != "POST":
        return render(request, "web/collaborators/accept.html", context)
    try:
        membership = services.accept(user, token)
    except DomainError as exc:
        context["error"] = exc.message
        return render(request, "web/collaborators/accept.html", context, status=exc.status)
    messages.success(
        request,
        _("Welcome! You now have access to %(site)s of %(organization)s.")
        % {"site": context["site"], "organization": invitation.organization.name},
    )
    if membership.property_id is not None:
        return redirect("web:property", property_id=membership.property_id)
    return redirect("web:dashboard")


@require_POST
def sign_out_to_accept(request: HttpRequest, token: str) -> HttpResponse:
    """Sign out, then come back to the invitation to sign in with the right address."""
    logout(request)
    return redirect("web:accept_collaboration", token=token)
