"""Laundry machines (washers and dryers) at a site, and the cycles they run.

Each machine has a controller that speaks the lock protocol as a device of
kind ``laundry`` (docs/protocol/laundry-v1.md): it authenticates like a lock
(serial and device secret), holds a versioned list of the badges allowed to
start it, decides by itself, and reports each cycle's start and end with its
program and energy. Who may start a machine is the platform's one equipment
rule (badges.access). A cycle is a record of use, stored once per controller
sequence number however often it is uploaded."""

from __future__ import annotations

import builtins
import hashlib
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from doorkeep.accounts.models import Organization
from doorkeep.properties.models import Property


class MachineKind(models.TextChoices):
    WASHER = "washer", _("Washing machine")
    DRYER = "dryer", _("Dryer")


class MachineState(models.TextChoices):
    FREE = "free", _("Free")
    RUNNING = "running", _("Running")
    OUT_OF_ORDER = "out_of_order", _("Out of order")


class Machine(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="machines")
    kind = models.CharField(
        _("kind"), max_length=10, choices=MachineKind.choices, default=MachineKind.WASHER
    )
    name = models.CharField(_("name"), max_length=100, blank=True, default="")
    serial = models.CharField(_("controller serial"), max_length=32, unique=True)
    secret_digest = models.CharField(max_length=64)
    secret_set_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True)
    # What the controller reports.
    state = models.CharField(max_length=14, choices=MachineState.choices, default=MachineState.FREE)
    state_at = models.DateTimeField(null=True, blank=True)
    programs: models.JSONField[Any, Any] = models.JSONField(default=list, blank=True)
    firmware = models.CharField(max_length=40, blank=True, default="")
    clock_offset_ms = models.BigIntegerField(null=True, blank=True)
    last_seq = models.PositiveBigIntegerField(default=0)
    # The connection: which gateway holds it (empty when offline).
    online = models.BooleanField(default=False)
    gateway = models.CharField(max_length=64, blank=True, default="")
    gateway_url = models.CharField(max_length=200, blank=True, default="")
    connected_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # The list of badges allowed to start it: the platform's version (raised
    # in the transaction that changes it) and what the controller acknowledged.
    list_version = models.PositiveBigIntegerField(default=1)
    acked_version = models.PositiveBigIntegerField(default=0)
    acked_entries: models.JSONField[Any, Any] = models.JSONField(default=dict, blank=True)
    last_push_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["property_id", "name", "serial"]
        indexes = [models.Index(fields=["property", "removed_at"], name="machine_site")]

    def __str__(self) -> str:
        return self.name or self.serial

    @builtins.property
    def label(self) -> str:
        return self.name or self.serial

    @staticmethod
    def digest_of(secret: str) -> str:
        return hashlib.sha256(("doorkeep.machine:" + secret).encode()).hexdigest()


class CycleReview(models.TextChoices):
    END_WITHOUT_START = "end_without_start", _("No known start")
    NOT_AUTHORIZED = "not_authorized", _("Started with a badge that was refused")


class Cycle(models.Model):
    """One run of a machine. ``seq`` is the controller's own number for it:
    a start or an end uploaded again (after a lost acknowledgement, or from
    the controller's memory after a time offline) finds the same row."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="+")
    machine = models.ForeignKey(Machine, on_delete=models.PROTECT, related_name="cycles")
    seq = models.PositiveBigIntegerField()
    program = models.CharField(_("program"), max_length=40, blank=True, default="")
    tag = models.CharField(max_length=20, blank=True, default="")
    badge = models.ForeignKey(
        "badges.Badge", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    person = models.ForeignKey(
        "keys.Person", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    unit = models.ForeignKey(
        "residents.Unit", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    remote = models.BooleanField(default=False)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    energy_wh = models.BigIntegerField(null=True, blank=True)
    review = models.CharField(max_length=30, blank=True, default="", choices=CycleReview.choices)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["machine", "seq"], name="cycle_once_per_controller_seq")
        ]
        indexes = [models.Index(fields=["property", "started_at"], name="cycle_site_time")]

    def __str__(self) -> str:
        return f"cycle {self.seq} of {self.machine}"
