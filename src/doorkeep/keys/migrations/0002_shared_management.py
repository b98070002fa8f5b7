import django.db.models.deletion
from django.db import migrations, models


def owner_is_issuer(apps, schema_editor):
    Key = apps.get_model("keys", "Key")
    Key.objects.update(lock_owner_id=models.F("organization_id"))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_organization_building_management_since_and_more"),
        ("keys", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="key",
            name="lock_owner",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="accounts.organization",
            ),
        ),
        migrations.RunPython(owner_is_issuer, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="key",
            name="lock_owner",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="accounts.organization",
            ),
        ),
        migrations.AlterField(
            model_name="key",
            name="person",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="keys",
                to="keys.person",
            ),
        ),
        migrations.AddField(
            model_name="key",
            name="holder_organization",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="received_keys",
                to="accounts.organization",
            ),
        ),
        migrations.AddField(
            model_name="key",
            name="parent",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="children",
                to="keys.key",
            ),
        ),
    ]
