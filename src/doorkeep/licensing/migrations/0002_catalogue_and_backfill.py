"""The default product catalogue, and a free period plus included keys for
locks registered before licensing existed."""

import calendar

from django.conf import settings
from django.db import migrations

CATALOGUE = [
    ("MGMT-5Y", "Full management, 5 years", "management", 5, 0),
    ("ORGS-5Y", "Option: issue keys to organizations, 5 years", "organizations_option", 5, 0),
    ("KEYS-25", "Key pack: 25 keys", "key_pack", 0, 25),
    ("KEYS-100", "Key pack: 100 keys", "key_pack", 0, 100),
    ("KEYS-500", "Key pack: 500 keys", "key_pack", 0, 500),
    ("ORG-MGMT", "Account upgrade: organization management", "organization_management", 0, 0),
]


def _add_months(moment, months):
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(
        year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1])
    )


def forwards(apps, schema_editor):
    Product = apps.get_model("licensing", "Product")
    Period = apps.get_model("licensing", "Period")
    KeyAllotment = apps.get_model("licensing", "KeyAllotment")
    Lock = apps.get_model("locks", "Lock")
    for sku, name, kind, years, keys in CATALOGUE:
        Product.objects.get_or_create(
            sku=sku, defaults={"name": name, "kind": kind, "years": years, "keys": keys}
        )
    for lock in Lock.objects.filter(first_registered_at__isnull=False):
        if not Period.objects.filter(lock=lock, kind="free").exists():
            Period.objects.create(
                lock=lock,
                kind="free",
                starts_at=lock.first_registered_at,
                ends_at=_add_months(lock.first_registered_at, settings.DOORKEEP["FREE_MONTHS"]),
            )
            KeyAllotment.objects.create(
                lock=lock, keys=settings.DOORKEEP["INCLUDED_KEYS"], included=True
            )


class Migration(migrations.Migration):
    dependencies = [("licensing", "0001_initial"), ("locks", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
