"""Charging stations (OCPP 1.6J and 2.0.1) at a site, their connectors, and
the charging sessions they report.

A station is shared by the site's residents, or private to the unit of the
parking space it stands at. Who may charge is the platform's one equipment
rule (badges.access). A session is a record of use: it keeps what the station
said (start and stop, meter readings, the badge presented) and whom it
belongs to (the badge's person, and the unit they lived in that day); a
session the platform cannot make sense of is kept and flagged for review,
never dropped."""

from __future__ import annotations

import builtins
import hashlib
import re
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from doorkeep.accounts.models import Organization
from doorkeep.properties.models import Property

# A charge point's identity is the last part of its URL (/ocpp/{id}): OCPP
# 2.0.1 allows up to 48 characters; we take the URL-safe ones.
CHARGE_POINT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,47}$")


class OcppVersion(models.TextChoices):
    V16 = "1.6", "OCPP 1.6J"
    V201 = "2.0.1", "OCPP 2.0.1"


class Station(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="stations")
    parking_space = models.ForeignKey(
        "residents.ParkingSpace",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="stations",
    )
    charge_point_id = models.CharField(_("charge point id"), max_length=48, unique=True)
    name = models.CharField(_("name"), max_length=100, blank=True, default="")
    password_digest = models.CharField(max_length=64)
    password_set_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True)
    # What the station said of itself (BootNotification).
    ocpp_version = models.CharField(max_length=8, blank=True, default="")
    vendor = models.CharField(max_length=50, blank=True, default="")
    model = models.CharField(max_length=50, blank=True, default="")
    serial_number = models.CharField(max_length=50, blank=True, default="")
    firmware = models.CharField(max_length=50, blank=True, default="")
    # The connection: which gateway holds it (empty when offline).
    online = models.BooleanField(default=False)
    gateway = models.CharField(max_length=64, blank=True, default="")
    gateway_url = models.CharField(max_length=200, blank=True, default="")
    connected_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_boot_at = models.DateTimeField(null=True, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The local authorization list: the version the platform's list is at
    # (raised in the transaction that changes it), and what the station
    # acknowledged (its version and each entry's fingerprint, by id tag).
    list_version = models.PositiveBigIntegerField(default=1)
    acked_version = models.PositiveBigIntegerField(default=0)
    acked_entries: models.JSONField[Any, Any] = models.JSONField(default=dict, blank=True)
    last_push_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["property_id", "name", "charge_point_id"]
        indexes = [models.Index(fields=["property", "removed_at"], name="station_site")]

    def __str__(self) -> str:
        return self.name or self.charge_point_id

    @builtins.property
    def label(self) -> str:
        return self.name or self.charge_point_id

    @builtins.property
    def private(self) -> bool:
        space = self.parking_space
        return space is not None and space.unit_id is not None

    @staticmethod
    def digest_of(password: str) -> str:
        """Passwords are issued by the platform (24 random characters), so a
        fast digest is enough and keeps 1,000 reconnecting stations cheap."""
        return hashlib.sha256(("doorkeep.station:" + password).encode()).hexdigest()

    @builtins.property
    def sync_state(self) -> str:
        from doorkeep.gateway.models import SyncState

        if self.acked_version >= self.list_version:
            return SyncState.SYNCED
        if self.last_error:
            return SyncState.FAILED
        return SyncState.PENDING


class Connector(models.Model):
    """A connector as the station reports it (StatusNotification). Number 0 is
    the station as a whole. In OCPP 2.0.1 the number is the EVSE's id."""

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="connectors")
    number = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=20, blank=True, default="")
    error_code = models.CharField(max_length=50, blank=True, default="")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["station_id", "number"]
        constraints = [models.UniqueConstraint(fields=["station", "number"], name="connector_once")]

    def __str__(self) -> str:
        return f"{self.station} #{self.number}"


class Review(models.TextChoices):
    """Why a session is flagged for a person to look at."""

    STOP_WITHOUT_START = "stop_without_start", _("No known start")
    METER_BACKWARDS = "meter_backwards", _("The meter went backwards")
    NOT_AUTHORIZED = "not_authorized", _("Started with a badge that was refused")


class ChargingSession(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="+")
    station = models.ForeignKey(Station, on_delete=models.PROTECT, related_name="sessions")
    connector = models.PositiveSmallIntegerField(default=0)
    transaction_id = models.CharField(max_length=64)
    id_tag = models.CharField(max_length=40, blank=True, default="")
    badge = models.ForeignKey(
        "badges.Badge", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    person = models.ForeignKey(
        "keys.Person",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="charging_sessions",
    )
    unit = models.ForeignKey(
        "residents.Unit", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    # The start time as the station sent it (started_at is not believed when
    # its clock is ahead): what tells a start sent again from a new one.
    reported_start = models.DateTimeField(null=True, blank=True)
    meter_start_wh = models.BigIntegerField(null=True, blank=True)
    meter_stop_wh = models.BigIntegerField(null=True, blank=True)
    meter_last_wh = models.BigIntegerField(null=True, blank=True)
    energy_wh = models.BigIntegerField(null=True, blank=True)
    power_w = models.IntegerField(null=True, blank=True)
    stop_reason = models.CharField(max_length=40, blank=True, default="")
    review = models.CharField(max_length=30, blank=True, default="", choices=Review.choices)
    remote = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["station", "transaction_id"], name="charging_session_once"
            )
        ]
        indexes = [
            models.Index(fields=["property", "started_at"], name="session_site"),
            models.Index(fields=["person", "started_at"], name="session_person"),
            models.Index(
                fields=["station", "connector"],
                condition=Q(stopped_at__isnull=True),
                name="session_running",
            ),
        ]

    def __str__(self) -> str:
        return f"session {self.transaction_id} at {self.station}"

    @builtins.property
    def running(self) -> bool:
        return self.stopped_at is None and self.started_at is not None


class MeterSample(models.Model):
    """One reading sent during a session (MeterValues, or a 2.0.1
    TransactionEvent): stored once per session and moment."""

    session = models.ForeignKey(ChargingSession, on_delete=models.CASCADE, related_name="samples")
    at = models.DateTimeField()
    energy_wh = models.BigIntegerField(null=True, blank=True)
    power_w = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["session_id", "at"]
        constraints = [models.UniqueConstraint(fields=["session", "at"], name="meter_sample_once")]

    def __str__(self) -> str:
        return f"{self.energy_wh} Wh at {self.at:%Y-%m-%d %H:%M:%S}"
