from __future__ import annotations

from django.urls import URLPattern, path

from doorkeep.web import views
from doorkeep.web.views import billing as billing_views
from doorkeep.web.views import (
    collaborators,
    consumption,
    demo,
    guest_tags,
    guests,
    installations,
    logins,
    operator,
    portal,
    residents,
    statements,
    stations,
)
from doorkeep.web.views import machines as machine_views
from doorkeep.web.views import payments as payment_views

app_name = "web"
urlpatterns: list[URLPattern] = [
    path("", views.dashboard, name="dashboard"),
    path("demo/mail/", demo.demo_mail, name="demo_mail"),
    path("locks/register/", views.register_lock, name="register_lock"),
    path("locks/<int:lock_id>/", views.lock_detail, name="lock"),
    path("locks/<int:lock_id>/keys/", views.issue_key, name="issue_key"),
    path("locks/<int:lock_id>/keys/<int:key_id>/take-back/", views.revoke_key, name="revoke_key"),
    path("locks/<int:lock_id>/keys/<int:key_id>/edit/", views.edit_key, name="edit_key"),
    path(
        "locks/<int:lock_id>/organization-keys/",
        views.issue_organization_key,
        name="issue_organization_key",
    ),
    path("locks/<int:lock_id>/licence/", views.lock_licence, name="lock_licence"),
    path("locks/<int:lock_id>/rename/", views.rename_lock, name="rename_lock"),
    path("locks/<int:lock_id>/remove/", views.remove_lock, name="remove_lock"),
    path("locks/<int:lock_id>/events/", views.lock_events, name="lock_events"),
    path(
        "locks/<int:lock_id>/device-secret/",
        views.rotate_device_secret,
        name="rotate_device_secret",
    ),
    path("locks/<int:lock_id>/open/", views.open_lock, name="open_lock"),
    path("doors/", views.doors, name="doors"),
    path("doors/<int:entry_id>/open/", views.open_door, name="open_door"),
    path("locks/<int:lock_id>/events.csv", views.lock_events_csv, name="lock_events_csv"),
    path("properties/add/", views.create_property, name="create_property"),
    path("properties/<int:property_id>/", views.property_detail, name="property"),
    path("properties/<int:property_id>/entries/", views.add_entry, name="add_entry"),
    path("properties/<int:property_id>/events/", views.property_events, name="property_events"),
    path(
        "properties/<int:property_id>/events.csv",
        views.property_events_csv,
        name="property_events_csv",
    ),
    path("shared/<int:key_id>/", views.shared_key, name="shared_key"),
    path("shared/<int:key_id>/keys/", views.issue_shared_key, name="issue_shared_key"),
    path(
        "shared/<int:key_id>/keys/<int:child_id>/take-back/",
        views.revoke_shared_key,
        name="revoke_shared_key",
    ),
    path(
        "shared/<int:key_id>/keys/<int:child_id>/edit/",
        views.edit_shared_key,
        name="edit_shared_key",
    ),
    path("settings/upgrades/", views.upgrades, name="upgrades"),
    path(
        "settings/upgrades/<int:org_id>/building-management/",
        views.activate_building_management,
        name="activate_building_management",
    ),
    path(
        "settings/upgrades/<int:org_id>/organization-management/",
        views.redeem_organization_code,
        name="redeem_organization_code",
    ),
    # Guests (docs/residents.md, docs/guests.md)
    path("properties/<int:property_id>/guests/", guests.guest_settings, name="guest_settings"),
    path(
        "properties/<int:property_id>/guests/policy/",
        guests.save_guest_policy,
        name="save_guest_policy",
    ),
    path("properties/<int:property_id>/panels/", guests.add_panel, name="add_panel"),
    path(
        "properties/<int:property_id>/panels/<int:panel_id>/remove/",
        guests.remove_panel,
        name="remove_panel",
    ),
    path("guests/", guests.guests_home, name="guests"),
    path("guests/<int:property_id>/invite/", guests.invite, name="invite"),
    path("guests/invitations/<int:invitation_id>/", guests.invitation_detail, name="invitation"),
    path(
        "guests/invitations/<int:invitation_id>/resend/",
        guests.resend_invitation,
        name="resend_invitation",
    ),
    path(
        "guests/invitations/<int:invitation_id>/revoke/",
        guests.revoke_invitation,
        name="revoke_invitation",
    ),
    path("invitations/<str:token>/", guests.invitation_link, name="invitation_link"),
    path(
        "invitations/<str:token>/sign-out/",
        guests.sign_out_for_invitation,
        name="sign_out_for_invitation",
    ),
    path("home/", guests.home, name="home"),
    path("guest/", guests.guest_home, name="guest_home"),
    path(
        "guest/invitations/<int:invitation_id>/<str:answer>/",
        guests.answer_invitation,
        name="answer_invitation",
    ),
    path("guest/<int:property_id>/key/", guests.guest_key, name="guest_key"),
    path("guest/entries/<int:entry_id>/unlock/", guests.guest_unlock, name="guest_unlock"),
    path("guest/entries/<int:entry_id>/verify/", guests.guest_verify, name="guest_verify"),
    path("guest/tap/", guests.guest_tap, name="guest_tap"),
    path("guest/tag/<int:panel_id>/", guest_tags.tag_tap, name="guest_tag_tap"),
    path("guest/tag/confirm/", guest_tags.tag_confirm, name="guest_tag_confirm"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/read-all/", views.read_all_notifications, name="read_all_notifications"),
    path(
        "notifications/<int:notification_id>/open/",
        views.open_notification,
        name="open_notification",
    ),
    path(
        "notifications/<int:notification_id>/read/",
        views.read_notification,
        name="read_notification",
    ),
    path("settings/notifications/", views.notification_settings, name="notification_settings"),
    path("settings/notifications/test/", views.test_notification, name="test_notification"),
    path(
        "settings/notifications/push/<int:subscription_id>/remove/",
        views.remove_push_subscription,
        name="remove_push_subscription",
    ),
    path("sw.js", views.service_worker, name="service_worker"),
    path("settings/webhooks/", views.webhooks_index, name="webhooks_index"),
    path("organizations/<int:org_id>/webhooks/", views.webhooks, name="webhooks"),
    path(
        "organizations/<int:org_id>/webhooks/<int:endpoint_id>/toggle/",
        views.toggle_webhook,
        name="toggle_webhook",
    ),
    path(
        "organizations/<int:org_id>/webhooks/<int:endpoint_id>/delete/",
        views.delete_webhook,
        name="delete_webhook",
    ),
    path(
        "organizations/<int:org_id>/webhooks/<int:endpoint_id>/test/",
        views.test_webhook,
        name="test_webhook",
    ),
    # Residents and badges (a site's owner and managers; the resident portal; the operator)
    path(
        "properties/<int:property_id>/residents/",
        residents.site_residents,
        name="site_residents",
    ),
    path("properties/<int:property_id>/units/", residents.add_unit, name="add_unit"),
    path(
        "properties/<int:property_id>/parking-spaces/",
        residents.add_parking_space,
        name="add_parking_space",
    ),
    path(
        "properties/<int:property_id>/residents/add/", residents.add_resident, name="add_resident"
    ),
    path(
        "properties/<int:property_id>/residents/<int:residency_id>/move-out/",
        residents.set_move_out,
        name="set_move_out",
    ),
    path(
        "properties/<int:property_id>/residents/import/",
        residents.import_residents,
        name="import_residents",
    ),
    path(
        "properties/<int:property_id>/billing/mode/",
        residents.set_billing_mode,
        name="set_billing_mode",
    ),
    path(
        "properties/<int:property_id>/billing/badge-price/",
        residents.set_badge_price,
        name="set_badge_price",
    ),
    path(
        "properties/<int:property_id>/badges/register/",
        residents.register_badge,
        name="register_badge",
    ),
    path(
        "properties/<int:property_id>/badges/<int:badge_id>/lost/",
        residents.report_lost,
        name="site_badge_lost",
    ),
    path(
        "properties/<int:property_id>/badges/<int:badge_id>/return/",
        residents.return_badge,
        name="return_badge",
    ),
    path(
        "properties/<int:property_id>/badges/<int:badge_id>/reactivate/",
        residents.reactivate_badge,
        name="reactivate_badge",
    ),
    # Portal logins (R40): on the site's page, and the public pages with the site's code
    path(
        "properties/<int:property_id>/residents/notice/",
        logins.notice,
        name="residents_notice",
    ),
    path(
        "properties/<int:property_id>/residents/invite/",
        logins.invite_residents,
        name="invite_residents",
    ),
    path(
        "properties/<int:property_id>/login-requests/<int:request_id>/approve/",
        logins.approve_login,
        name="approve_login",
    ),
    path(
        "properties/<int:property_id>/login-requests/<int:request_id>/refuse/",
        logins.refuse_login,
        name="refuse_login",
    ),
    path("portal/join/", logins.join, name="join"),
    path("portal/join/sent/", logins.join_sent, name="join_sent"),
    path("portal/join/<str:code>/", logins.join_site, name="join_site"),
    path("portal/confirm/<str:token>/", logins.confirm, name="confirm_login"),
    # Charging-station installations (R49): the site's page, the portal, the operator
    path(
        "properties/<int:property_id>/installations/<int:installation_id>/approve/",
        installations.site_approve,
        name="site_installation_approve",
    ),
    path(
        "properties/<int:property_id>/installations/<int:installation_id>/decline/",
        installations.site_decline,
        name="site_installation_decline",
    ),
    path(
        "properties/<int:property_id>/installations/<int:installation_id>/organize/",
        installations.site_organize,
        name="site_installation_organize",
    ),
    path(
        "properties/<int:property_id>/installations/<int:installation_id>/electrician/",
        installations.site_electrician,
        name="site_installation_electrician",
    ),
    path(
        "properties/<int:property_id>/installations/<int:installation_id>/schedule/",
        installations.site_schedule,
        name="site_installation_schedule",
    ),
    path(
        "properties/<int:property_id>/installations/<int:installation_id>/installed/",
        installations.site_installed,
        name="site_installation_installed",
    ),
    path(
        "properties/<int:property_id>/installations/<int:installation_id>/cancel/",
        installations.site_cancel,
        name="site_installation_cancel",
    ),
    path("installations/<int:installation_id>/", installations.installation, name="installation"),
    path("portal/installations/ask/", installations.portal_ask, name="portal_installation_ask"),
    path(
        "portal/installations/<int:installation_id>/cancel/",
        installations.portal_cancel,
        name="portal_installation_cancel",
    ),
    path(
        "operator/installations/",
        installations.operator_installations,
        name="operator_installations",
    ),
    path(
        "operator/installations/<int:installation_id>/schedule/",
        installations.operator_schedule,
        name="operator_installation_schedule",
    ),
    path(
        "operator/installations/<int:installation_id>/installed/",
        installations.operator_installed,
        name="operator_installation_installed",
    ),
    # Monthly statements of an individual-statements site (issue 14)
    path(
        "properties/<int:property_id>/statements/",
        statements.site_statements,
        name="site_statements",
    ),
    path(
        "properties/<int:property_id>/statements/<str:month>/summary.pdf",
        statements.summary_pdf,
        name="statements_summary_pdf",
    ),
    path(
        "properties/<int:property_id>/statements/<str:month>/uses.csv",
        statements.month_csv,
        name="statements_csv",
    ),
    path(
        "properties/<int:property_id>/statements/<str:month>/<int:person_id>.pdf",
        statements.statement_pdf,
        name="statement_pdf",
    ),
    path(
        "properties/<int:property_id>/statements/<str:month>/<int:person_id>.csv",
        statements.statement_csv,
        name="statement_csv",
    ),
    # Laundry machines (issue 14): a site's machines and cycles, a machine's page, the portal
    path(
        "properties/<int:property_id>/laundry/",
        machine_views.site_machines,
        name="site_machines",
    ),
    path(
        "properties/<int:property_id>/laundry/live/",
        machine_views.site_machines_live,
        name="site_machines_live",
    ),
    path(
        "properties/<int:property_id>/laundry/add/",
        machine_views.register_machine,
        name="register_machine",
    ),
    path("machines/<int:machine_id>/", machine_views.machine_detail, name="machine"),
    path("machines/<int:machine_id>/live/", machine_views.machine_live, name="machine_live"),
    path("machines/<int:machine_id>/change/", machine_views.change_machine, name="change_machine"),
    path(
        "machines/<int:machine_id>/secret/",
        machine_views.rotate_machine_secret,
        name="rotate_machine_secret",
    ),
    path("machines/<int:machine_id>/remove/", machine_views.remove_machine, name="remove_machine"),
    path("portal/laundry/live/", machine_views.portal_laundry_live, name="portal_laundry_live"),
    path(
        "portal/laundry/machines/<int:machine_id>/start/",
        machine_views.portal_start,
        name="portal_laundry_start",
    ),
    # Charging stations (issue 13): a site's stations and sessions, a station's page, the portal
    path("properties/<int:property_id>/stations/", stations.site_stations, name="site_stations"),
    path(
        "properties/<int:property_id>/stations/live/",
        stations.site_stations_live,
        name="site_stations_live",
    ),
    path(
        "properties/<int:property_id>/stations/add/",
        stations.register_station,
        name="register_station",
    ),
    path(
        "properties/<int:property_id>/charging-sessions/",
        stations.site_sessions,
        name="site_charging_sessions",
    ),
    path(
        "properties/<int:property_id>/charging-sessions.csv",
        stations.site_sessions_csv,
        name="site_charging_sessions_csv",
    ),
    path("stations/<int:station_id>/", stations.station_detail, name="station"),
    path("stations/<int:station_id>/live/", stations.station_live, name="station_live"),
    path("stations/<int:station_id>/commands/", stations.station_command, name="station_command"),
    path("stations/<int:station_id>/change/", stations.change_station, name="change_station"),
    path(
        "stations/<int:station_id>/password/",
        stations.rotate_station_password,
        name="rotate_station_password",
    ),
    path("stations/<int:station_id>/remove/", stations.remove_station, name="remove_station"),
    path(
        "stations/<int:station_id>/sessions.csv",
        stations.station_sessions_csv,
        name="station_sessions_csv",
    ),
    path("portal/charging/live/", stations.portal_charging_live, name="portal_charging_live"),
    path(
        "portal/charging/stations/<int:station_id>/connectors/<int:connector>/start/",
        stations.portal_start,
        name="portal_charging_start",
    ),
    path(
        "portal/charging/sessions/<int:session_id>/stop/",
        stations.portal_stop,
        name="portal_charging_stop",
    ),
    path(
        "portal/charging-sessions.csv",
        stations.portal_sessions_csv,
        name="portal_charging_sessions_csv",
    ),
    path("portal/", portal.portal, name="portal"),
    path("portal/badges/ask/", portal.ask_for_badge, name="portal_ask"),
    path("portal/badges/<int:badge_id>/lost/", portal.report_lost, name="portal_lost"),
    path(
        "portal/requests/<int:request_id>/received/",
        portal.confirm_received,
        name="portal_received",
    ),
    path("operator/badges/", operator.operator_badges, name="operator_badges"),
    path("operator/badges/<int:request_id>/approve/", operator.approve, name="operator_approve"),
    path("operator/badges/<int:request_id>/refuse/", operator.refuse, name="operator_refuse"),
    path("operator/badges/<int:request_id>/assign/", operator.assign, name="operator_assign"),
    path("operator/badges/<int:request_id>/deliver/", operator.deliver, name="operator_deliver"),
    path(
        "operator/badges/<int:request_id>/received/",
        operator.received,
        name="operator_received",
    ),
    # Consumption (R40): a resident's own in the portal; a site's, a unit's, a resident's
    path("portal/consumption/", consumption.portal_consumption, name="portal_consumption"),
    path(
        "portal/consumption.csv",
        consumption.portal_consumption_csv,
        name="portal_consumption_csv",
    ),
    path(
        "portal/consumption/<str:month>/",
        consumption.portal_consumption_month,
        name="portal_consumption_month",
    ),
    path(
        "portal/consumption/<str:month>.csv",
        consumption.portal_consumption_month_csv,
        name="portal_consumption_month_csv",
    ),
    path(
        "properties/<int:property_id>/consumption/",
        consumption.site_consumption,
        name="site_consumption",
    ),
    path(
        "properties/<int:property_id>/consumption.csv",
        consumption.site_consumption_csv,
        name="site_consumption_csv",
    ),
    path(
        "properties/<int:property_id>/consumption/<str:month>/",
        consumption.site_consumption_month,
        name="site_consumption_month",
    ),
    path(
        "properties/<int:property_id>/consumption/<str:month>.csv",
        consumption.site_consumption_month_csv,
        name="site_consumption_month_csv",
    ),
    path(
        "properties/<int:property_id>/units/<int:unit_id>/consumption/",
        consumption.unit_consumption,
        name="unit_consumption",
    ),
    path(
        "properties/<int:property_id>/units/<int:unit_id>/consumption.csv",
        consumption.unit_consumption_csv,
        name="unit_consumption_csv",
    ),
    path(
        "properties/<int:property_id>/units/<int:unit_id>/consumption/<str:month>/",
        consumption.unit_consumption_month,
        name="unit_consumption_month",
    ),
    path(
        "properties/<int:property_id>/units/<int:unit_id>/consumption/<str:month>.csv",
        consumption.unit_consumption_month_csv,
        name="unit_consumption_month_csv",
    ),
    path(
        "properties/<int:property_id>/residents/<int:person_id>/consumption/",
        consumption.resident_consumption,
        name="resident_consumption",
    ),
    path(
        "properties/<int:property_id>/residents/<int:person_id>/consumption.csv",
        consumption.resident_consumption_csv,
        name="resident_consumption_csv",
    ),
    path(
        "properties/<int:property_id>/residents/<int:person_id>/consumption/<str:month>/",
        consumption.resident_consumption_month,
        name="resident_consumption_month",
    ),
    path(
        "properties/<int:property_id>/residents/<int:person_id>/consumption/<str:month>.csv",
        consumption.resident_consumption_month_csv,
        name="resident_consumption_month_csv",
    ),
    # Payments (issue 14): bank files of an organization and of the platform, marking as paid
    path("organizations/<int:org_id>/bank-files/", payment_views.bank_files, name="bank_files"),
    path(
        "organizations/<int:org_id>/bank-files/upload/",
        payment_views.upload_bank_file,
        name="upload_bank_file",
    ),
    path("operator/bank-files/", payment_views.operator_bank_files, name="operator_bank_files"),
    path(
        "operator/bank-files/upload/",
        payment_views.operator_upload_bank_file,
        name="operator_upload_bank_file",
    ),
    path("bank-files/<int:bank_file_id>/", payment_views.bank_file, name="bank_file"),
    path(
        "invoices/<int:invoice_id>/mark-paid/",
        payment_views.invoice_mark_paid,
        name="invoice-mark-paid",
    ),
    # Billing (issue 14): a site's settings, tariffs, runs and invoices; the portal's invoices
    path("properties/<int:property_id>/billing/", billing_views.site_billing, name="site_billing"),
    path(
        "properties/<int:property_id>/billing/issuer/",
        billing_views.set_site_issuer,
        name="set_site_issuer",
    ),
    path(
        "properties/<int:property_id>/billing/issuers/add/",
        billing_views.add_issuer,
        name="add_issuer",
    ),
    path("properties/<int:property_id>/tariffs/", billing_views.site_tariffs, name="site_tariffs"),
    path("properties/<int:property_id>/tariffs/add/", billing_views.add_tariff, name="add_tariff"),
    path("tariffs/<int:tariff_id>/delete/", billing_views.delete_tariff, name="delete_tariff"),
    path(
        "properties/<int:property_id>/billing-runs/",
        billing_views.site_billing_runs,
        name="site_billing_runs",
    ),
    path(
        "properties/<int:property_id>/billing-runs/draft/",
        billing_views.draft_billing_run,
        name="draft_billing_run",
    ),
    path("billing-runs/<int:run_id>/", billing_views.billing_run, name="billing_run"),
    path(
        "billing-runs/<int:run_id>/draft/",
        billing_views.redraft_billing_run,
        name="redraft_billing_run",
    ),
    path(
        "billing-runs/<int:run_id>/discard/",
        billing_views.discard_billing_run,
        name="discard_billing_run",
    ),
    path(
        "billing-runs/<int:run_id>/finalize/",
        billing_views.finalize_billing_run,
        name="finalize_billing_run",
    ),
    path(
        "properties/<int:property_id>/invoices/",
        billing_views.site_invoices,
        name="site_invoices",
    ),
    path("invoices/<int:invoice_id>/", billing_views.invoice_detail, name="invoice"),
    path("invoices/<int:invoice_id>/pdf/", billing_views.invoice_pdf, name="invoice_pdf"),
    path(
        "invoices/<int:invoice_id>/credit/",
        billing_views.credit_invoice,
        name="credit_invoice",
    ),
    path("portal/invoices/", billing_views.portal_invoices, name="portal_invoices"),
    path(
        "portal/invoices/<int:invoice_id>/",
        billing_views.portal_invoice,
        name="portal_invoice",
    ),
    path(
        "portal/invoices/<int:invoice_id>/pdf/",
        billing_views.portal_invoice_pdf,
        name="portal_invoice_pdf",
    ),
    # Collaborators (R41): the owner's page, and the invited person's link
    path("settings/collaborators/", collaborators.collaborators, name="collaborators"),
    path(
        "settings/collaborators/<int:org_id>/invite/",
        collaborators.invite,
        name="invite_collaborator",
    ),
    path(
        "settings/collaborators/invitations/<int:invitation_id>/revoke/",
        collaborators.revoke_invitation,
        name="revoke_collaborator_invitation",
    ),
    path(
        "settings/collaborators/<int:org_id>/<int:membership_id>/end/",
        collaborators.end_access,
        name="end_collaborator_access",
    ),
    path(
        "settings/collaborators/<int:org_id>/two-factor/",
        collaborators.two_factor,
        name="collaborators_two_factor",
    ),
    path("collaborators/accept/<str:token>/", collaborators.accept, name="accept_collaboration"),
    path(
        "collaborators/accept/<str:token>/sign-out/",
        collaborators.sign_out_to_accept,
        name="sign_out_to_accept_collaboration",
    ),
    path("settings/tokens/", views.tokens, name="tokens"),
    path("settings/tokens/<int:token_id>/revoke/", views.revoke_token, name="revoke_token"),
]
