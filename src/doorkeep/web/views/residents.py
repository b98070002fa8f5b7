"""A site's residents and badges, for its owner and building managers: units,
parking spaces, who lives there, the CSV import, the billing mode (changed in
two steps), the price of an extra badge, the residents' badges (report lost,
switch on again) and registering an existing badge. The page also holds the
portal logins (views/logins.py) and the charging-station installations
(views/installations.py).

A member of the organization sees the site's units, spaces and billing, not
its people, and is told why a change is refused. A read-only collaborator
sees its people and badges too, and changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from doorkeep import policy
from doorkeep.badges import services as badge_services
from doorkeep.badges.models import Badge, BadgeStatus
from doorkeep.badges.selectors import badges_of_site
from doorkeep.core.errors import DomainError
from doorkeep.keys.cards import CARD_TABLE
from doorkeep.properties.models import BillingMode
from doorkeep.properties.services import get_property
from doorkeep.residents import portal, services
from doorkeep.residents.models import LoginRequest, Residency
from doorkeep.web import installation_cards, queries
from doorkeep.web.resident_forms import (
    BadgePriceForm,
    BillingModeForm,
    ImportForm,
    LostForm,
    MoveOutForm,
    ParkingSpaceForm,
    RefuseForm,
    RegisterBadgeForm,
    ResidentForm,
    UnitForm,
)
from doorkeep.web.views.common import Action, _denial, _form_or_page_error, current_user, page_view

# The forms that need MANAGE_BADGES; the others need MANAGE_RESIDENTS.
_BADGE_FORMS = frozenset({"register"})
_CARD_LABELS = {row.card_type: row.label for row in CARD_TABLE}
DECIDED_LOGINS_SHOWN = 20
INSTALLATIONS_SHOWN = 200

money = badge_services.money


@dataclass
class ResidentRow:
    residency: Residency
    current: bool  # lives there today (else moves in later)


@dataclass
class BadgeRow:
    badge: Badge
    card: str
    can_report: bool
    can_reactivate: bool

    @property
    def lost(self) -> bool:
        return self.badge.status == BadgeStatus.LOST


@dataclass
class LoginRow:
    """A confirmed login request waiting for the site's manager."""

    request: LoginRequest
    refuse_form: RefuseForm
    error: str = ""


def _login_rows(
    waiting: list[LoginRequest], failed: tuple[int, str, RefuseForm | None] | None
) -> list[LoginRow]:
    rows = []
    for item in waiting:
        mine = failed if failed is not None and failed[0] == item.pk else None
        form = mine[2] if mine is not None and mine[2] is not None else RefuseForm()
        form.auto_id = f"id_refuse_login{item.pk}_%s"
        rows.append(LoginRow(item, form, mine[1] if mine is not None else ""))
    return rows


def _site_page(
    request: HttpRequest,
    property_id: int,
    *,
    status: int = 200,
    error: str = "",
    posted: dict[str, forms.Form] | None = None,
    import_errors: list[dict[str, Any]] | None = None,
    mode_change: services.ModeChange | None = None,
    failed_login: tuple[int, str, RefuseForm | None] | None = None,
    failed_installation: installation_cards.Failed | None = None,
) -> HttpResponse:
    user = current_user(request)
    prop = get_property(user, property_id)
    org, site = prop.organization_id, prop.pk
    can_manage = policy.can(user, Action.MANAGE_RESIDENTS, org, site)
    can_badges = policy.can(user, Action.MANAGE_BADGES, org, site)
    can_reactivate = policy.can(user, Action.REACTIVATE_BADGES, org, site)
    can_view_people = policy.can(user, Action.VIEW_RESIDENTS, org, site)
    if (failed_login or failed_installation) and not can_manage:  # not theirs to decide: say why
        error, status = error or _denial(user, Action.MANAGE_RESIDENTS, org, site), 403
    posted = dict(posted or {})
    for name in list(posted):  # a form they may not use came back (it is not shown): say why
        action = Action.MANAGE_BADGES if name in _BADGE_FORMS else Action.MANAGE_RESIDENTS
        if not policy.can(user, action, org, site):
            error, status = error or _denial(user, action, org, site), 403
            del posted[name]
    today = services.site_today(prop)
    units = list(prop.units.all())
    context: dict[str, Any] = {
        "nav": "locks",
        "prop": prop,
        "tz": queries.zone_of(prop),
        "today": today,
        "error": error,
        "can_manage": can_manage,
        "can_badges": can_badges,
        "can_view_people": can_view_people,
        "manage_denied": "" if can_manage else _denial(user, Action.MANAGE_RESIDENTS, org, site),
        "units": units,
        "spaces": list(prop.parking_spaces.select_related("unit")),
        "price": money(prop.extra_badge_price_minor, prop.currency),
        "modes": BillingMode,
        "mode_label": BillingMode(prop.billing_mode).label,
        "mode_change": mode_change,
        "mode_change_label": BillingMode(mode_change.mode).label if mode_change else "",
        "import_errors": import_errors or [],
    }
    # People's data (residents, badges) only for those who manage them or
    # may read them (read-only collaborators).
    visible = can_manage or can_badges or can_view_people
    residencies = queries.residencies_from(prop, today) if visible else []
    if visible:
        context["rows"] = [ResidentRow(r, r.move_in <= today) for r in residencies]
    if can_manage:
        space_form = posted.get("space") or ParkingSpaceForm()
        resident_form = posted.get("resident") or ResidentForm(initial={"move_in": today})
        assert isinstance(space_form, ParkingSpaceForm)
        assert isinstance(resident_form, ResidentForm)
        space_form.set_units(units)
        resident_form.set_units(units)
        context.update(
            unit_form=posted.get("unit") or UnitForm(),
            space_form=space_form,
            resident_form=resident_form,
            import_form=posted.get("import") or ImportForm(),
            mode_form=posted.get("mode") or BillingModeForm(initial={"mode": prop.billing_mode}),
            price_form=posted.get("price")
            or BadgePriceForm(
                initial={
                    "currency": prop.currency,
                    "price": f"{prop.extra_badge_price_minor / 100:.2f}",
                }
            ),
        )
        # Portal logins (R40): the notice's code, the requests waiting, the last decided.
        code = portal.portal_code(user, prop.pk)
        context.update(
            portal_code=code,
            join_url=portal.join_url(code),
            login_rows=_login_rows(queries.waiting_login_requests(prop), failed_login),
            decided_logins=queries.decided_login_requests(prop, DECIDED_LOGINS_SHOWN),
            # Charging-station installations (R49), with the forms of each one's next step.
            installations=[
                installation_cards.for_site(item, failed_installation)
                for item in queries.installations_of_site(prop, INSTALLATIONS_SHOWN)
            ],
        )
    if visible:
        reactivate_denied = (
            "" if can_reactivate else _denial(user, Action.REACTIVATE_BADGES, org, site)
        )
        context["badge_rows"] = [
            BadgeRow(
                badge,
                str(_CARD_LABELS.get(badge.card_type, badge.card_type)) if badge.card_type else "",
                can_badges and badge.status in (BadgeStatus.ACTIVE, BadgeStatus.PENDING),
                can_reactivate,
            )
            for badge in badges_of_site(prop)
        ]
        context["reactivate_denied"] = reactivate_denied
    if can_badges:
        register_form = posted.get("register") or RegisterBadgeForm()
        assert isinstance(register_form, RegisterBadgeForm)
        register_form.set_residents(r for r in residencies if r.includes(today))
        context["register_form"] = register_form
    return render(request, "web/residents/site.html", context, status=status)


def _back(property_id: int, anchor: str) -> HttpResponse:
    return redirect(reverse("web:site_residents", kwargs={"property_id": property_id}) + anchor)


def _refused(
    request: HttpRequest, property_id: int, name: str, form: Any, exc: DomainError
) -> HttpResponse:
    """The service's refusal: on the form it came from, or at the top of the page."""
    error = _form_or_page_error(form, exc)
    return _site_page(request, property_id, status=exc.status, error=error, posted={name: form})


@require_GET
@page_view
def site_residents(request: HttpRequest, property_id: int) -> HttpResponse:
    return _site_page(request, property_id)


@require_POST
@page_view
def add_unit(request: HttpRequest, property_id: int) -> HttpResponse:
    form = UnitForm(request.POST)
    if not form.is_valid():
        return _site_page(request, property_id, status=400, posted={"unit": form})
    try:
        unit = services.add_unit(current_user(request), property_id, form.cleaned_data["label"])
    except DomainError as exc:
        return _refused(request, property_id, "unit", form, exc)
    messages.success(request, _("Unit %(label)s is added.") % {"label": unit.label})
    return _back(property_id, "#units")


@require_POST
@page_view
def add_parking_space(request: HttpRequest, property_id: int) -> HttpResponse:
    form = ParkingSpaceForm(request.POST)
    if not form.is_valid():
        return _site_page(request, property_id, status=400, posted={"space": form})
    data = form.cleaned_data
    try:
        space = services.add_parking_space(
            current_user(request),
            property_id,
            data["number"],
            unit_id=data["unit"],
            station_serial=data["station_serial"],
        )
    except DomainError as exc:
        return _refused(request, property_id, "space", form, exc)
    messages.success(request, _("Parking space %(number)s is added.") % {"number": space.number})
    return _back(property_id, "#parking")


@require_POST
@page_view
def add_resident(request: HttpRequest, property_id: int) -> HttpResponse:
    form = ResidentForm(request.POST)
    if not form.is_valid():
        return _site_page(request, property_id, status=400, posted={"resident": form})
    data = form.cleaned_data
    spec = services.ResidentSpec(
        name=data["name"],
        email=data["email"],
        move_in=data["move_in"],
        unit_id=data["unit"],
        move_out=data["move_out"],
    )
    try:
        residency = services.add_resident(current_user(request), property_id, spec)
    except DomainError as exc:
        return _refused(request, property_id, "resident", form, exc)
    messages.success(
        request,
        _("%(name)s lives in %(unit)s from %(day)s.")
        % {
            "name": residency.person.name,
            "unit": residency.unit.label,
            "day": residency.move_in.isoformat(),
        },
    )
    return _back(property_id, "#residents")


@require_POST
@page_view
def set_move_out(request: HttpRequest, property_id: int, residency_id: int) -> HttpResponse:
    form = MoveOutForm(request.POST)
    if not form.is_valid():
        errors = " ".join(str(e) for e in form.errors.get("move_out", []))
        return _site_page(request, property_id, status=400, error=errors)
    move_out = form.cleaned_data["move_out"]
    try:
        residency = services.change_residency(
            current_user(request), residency_id, move_out=move_out
        )
    except DomainError as exc:
        return _site_page(request, property_id, status=exc.status, error=exc.message)
    if move_out is None:
        text = _("%(name)s lives in %(unit)s with no move-out date.")
    else:
        text = _("%(name)s moves out of %(unit)s on %(day)s.")
    day = move_out.isoformat() if move_out else ""
    messages.success(
        request, text % {"name": residency.person.name, "unit": residency.unit.label, "day": day}
    )
    return _back(residency.unit.property_id, "#residents")


@require_POST
@page_view
def import_residents(request: HttpRequest, property_id: int) -> HttpResponse:
    form = ImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _site_page(request, property_id, status=400, posted={"import": form})
    text = form.text()
    add_units = form.cleaned_data["add_missing_units"]
    try:
        result = services.import_residents(
            current_user(request), property_id, text, add_missing_units=add_units
        )
    except DomainError as exc:
        lines = exc.details.get("errors") if exc.code == "import_refused" else None
        if not lines:
            return _refused(request, property_id, "import", form, exc)
        # The lines back in the text area, to be corrected there.
        again = ImportForm({"csv": text, "add_missing_units": add_units or ""})
        return _site_page(
            request, property_id, status=exc.status, posted={"import": again}, import_errors=lines
        )
    text = _("%(n)d residents imported.") % {"n": len(result.imported)}
    if result.units_added:
        text += " " + _("Units added: %(units)s.") % {"units": ", ".join(result.units_added)}
    messages.success(request, text)
    return _back(property_id, "#residents")


@require_POST
@page_view
def set_billing_mode(request: HttpRequest, property_id: int) -> HttpResponse:
    """First without ``confirm``: the page lists the badges that would stop
    working on the equipment and asks to confirm; then with it."""
    form = BillingModeForm(request.POST)
    if not form.is_valid():
        return _site_page(request, property_id, status=400, posted={"mode": form})
    confirm = form.cleaned_data["confirm"]
    try:
        change = services.set_billing_mode(
            current_user(request), property_id, form.cleaned_data["mode"], confirm=confirm
        )
    except DomainError as exc:
        return _site_page(request, property_id, status=exc.status, error=exc.message)
    if not confirm:
        return _site_page(request, property_id, mode_change=change)
    label = BillingMode(change.mode).label
    if change.changed:
        messages.success(request, _("The billing mode is now “%(mode)s”.") % {"mode": label})
    else:
        messages.info(request, _("The billing mode was already “%(mode)s”.") % {"mode": label})
    return _back(property_id, "#billing")


@require_POST
@page_view
def set_badge_price(request: HttpRequest, property_id: int) -> HttpResponse:
    form = BadgePriceForm(request.POST)
    if not form.is_valid():
        return _site_page(request, property_id, status=400, posted={"price": form})
    try:
        prop = services.set_badge_price(
            current_user(request),
            property_id,
            currency=form.cleaned_data["currency"],
            price_minor=form.price_minor(),
        )
    except DomainError as exc:
        return _refused(request, property_id, "price", form, exc)
    messages.success(
        request,
        _("An extra badge costs %(price)s.")
        % {"price": money(prop.extra_badge_price_minor, prop.currency)},
    )
    return _back(property_id, "#billing")


@require_POST
@page_view
def register_badge(request: HttpRequest, property_id: int) -> HttpResponse:
    form = RegisterBadgeForm(request.POST)
    if not form.is_valid():
        return _site_page(request, property_id, status=400, posted={"register": form})
    data = form.cleaned_data
    try:
        badge = badge_services.register_existing_badge(
            current_user(request),
            property_id,
            data["person"],
            uid=data["uid"],
            atqa=data["atqa"],
            sak=data["sak"],
        )
    except DomainError as exc:
        return _refused(request, property_id, "register", form, exc)
    messages.success(
        request,
        _("Badge %(uid)s of %(name)s is registered and active.")
        % {"uid": badge.uid, "name": badge.person.name},
    )
    return _back(property_id, "#badges")


@require_POST
@page_view
def report_lost(request: HttpRequest, property_id: int, badge_id: int) -> HttpResponse:
    form = LostForm(request.POST)
    if not form.is_valid():
        return _site_page(request, property_id, status=400, error=_("Check the form."))
    try:
        report = badge_services.report_lost(
            current_user(request),
            badge_id,
            replacement=form.cleaned_data["replacement"],
            property_id=property_id,
        )
    except DomainError as exc:
        return _site_page(request, property_id, status=exc.status, error=exc.message)
    messages.success(request, lost_message(report))
    return _back(property_id, "#badges")


def lost_message(report: badge_services.LostReport) -> str:
    uid = report.badge.uid
    if not report.changed:
        return _("Badge %(uid)s was already reported lost; it stays switched off.") % {"uid": uid}
    text = _("Badge %(uid)s is reported lost and switched off everywhere.") % {"uid": uid}
    if report.replacement is not None:
        text += " " + _("A replacement is asked for.")
    elif report.replacement_error:
        text += " " + _("No replacement was asked for: %(reason)s") % {
            "reason": report.replacement_error
        }
    return text


@require_POST
@page_view
def return_badge(request: HttpRequest, property_id: int, badge_id: int) -> HttpResponse:
    try:
        badge = badge_services.return_badge(current_user(request), badge_id, property_id)
    except DomainError as exc:
        return _site_page(request, property_id, status=exc.status, error=exc.message)
    messages.success(
        request,
        _("Badge %(uid)s of %(name)s is handed back and switched off everywhere.")
        % {"uid": badge.uid, "name": badge.person.name},
    )
    return _back(property_id, "#badges")


@require_POST
@page_view
def reactivate_badge(request: HttpRequest, property_id: int, badge_id: int) -> HttpResponse:
    try:
        badge = badge_services.reactivate(current_user(request), badge_id, property_id)
    except DomainError as exc:
        return _site_page(request, property_id, status=exc.status, error=exc.message)
    messages.success(
        request,
        _("Badge %(uid)s of %(name)s works again.") % {"uid": badge.uid, "name": badge.person.name},
    )
    return _back(property_id, "#badges")
