# Each tap of an NTAG 424 DNA panel verifies presence once, in whatever order
# the guests' taps are confirmed (was: only a tap newer than the newest one
# confirmed, so a first guest confirming after a second was refused).

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


def keep_the_newest(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """The newest tap each panel verified stays verified (its token may still
    be within its two minutes)."""
    panel = apps.get_model("guests", "Panel")
    redeemed = apps.get_model("guests", "TapRedeemed")
    redeemed.objects.bulk_create(
        redeemed(panel_id=pk, counter=counter)
        for pk, counter in panel.objects.filter(tag_redeemed__gte=0).values_list(
            "pk", "tag_redeemed"
        )
    )


def newest_back(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    panel = apps.get_model("guests", "Panel")
    redeemed = apps.get_model("guests", "TapRedeemed")
    for pk in panel.objects.values_list("pk", flat=True):
        newest = redeemed.objects.filter(panel_id=pk).order_by("-counter").first()
        if newest is not None:
            panel.objects.filter(pk=pk).update(tag_redeemed=newest.counter)


class Migration(migrations.Migration):
    dependencies = [
        ("guests", "0003_ntag424_panels_and_encrypted_secrets"),
    ]

    operations = [
        migrations.CreateModel(
            name="TapRedeemed",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("counter", models.BigIntegerField()),
                ("at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "panel",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="guests.panel",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("panel", "counter"), name="tap_redeemed_once")
                ],
            },
        ),
        migrations.RunPython(keep_the_newest, newest_back),
        migrations.RemoveField(
            model_name="panel",
            name="tag_redeemed",
        ),
    ]
