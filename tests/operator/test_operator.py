"""The platform operator's tools: prepaid code batches (command line and admin),
and the licence reminders."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail

from doorkeep.accounts.models import Organization, Role
from doorkeep.cli import main
from doorkeep.licensing import codes
from doorkeep.licensing.models import Period, PeriodKind, PrepaidCode, Reminder
from doorkeep.licensing.services import redeem_for_lock, send_reminders
from doorkeep.licensing.state import licence_of


def test_codes_generate_prints_codes_that_work_once(world, capsys):
    assert main(["codes", "generate", "mgmt-5y", "3", "--note", "reseller A"]) == 0
    out = capsys.readouterr()
    plain = out.out.split()
    assert len(plain) == 3 and len(set(plain)) == 3
    assert all(len(code) == 24 and code.count("-") == 4 for code in plain)
    assert "shown once" in out.err
    stored = set(PrepaidCode.objects.values_list("digest", flat=True))
    assert {codes.digest(codes.normalize(c)) for c in plain} == stored
    assert not any(c.replace("-", "") in d for c in plain for d in stored)
    redeem_for_lock(world.alice, world.lock.pk, plain[0])
    assert licence_of(world.lock.pk).mode == "active"


def test_codes_generate_refuses_an_unknown_product_and_a_bad_date(db, capsys):
    assert main(["codes", "generate", "NOPE", "1"]) == 2
    assert "Known products: " in capsys.readouterr().err
    assert main(["codes", "generate", "MGMT-5Y", "1", "--expires", "next tuesday"]) == 2
    assert "is not a date" in capsys.readouterr().err
    assert main(["codes", "generate", "MGMT-5Y", "0"]) == 2


def test_codes_products_and_batches_list_the_catalogue_and_use(world, capsys):
    main(["codes", "products"])
    listed = capsys.readouterr().out
    for sku in ("MGMT-5Y", "ORGS-5Y", "KEYS-25", "ORG-MGMT"):
        assert sku in listed
    main(["codes", "generate", "KEYS-25", "2"])
    code = capsys.readouterr().out.split()[0]
    redeem_for_lock(world.alice, world.lock.pk, code)
    main(["codes", "batches"])
    assert "1/2 used" in capsys.readouterr().out


@pytest.fixture
def operator(world):
    user = world.charlie  # any account; make it an operator
    platform = Organization.objects.create(name="Doorkeep platform", is_platform=True)
    platform.memberships.create(user=user, role=Role.PLATFORM_OPERATOR)
    user.is_staff = user.is_superuser = True
    user.save()
    return user


def test_the_admin_generates_a_batch_and_hands_out_the_codes_once_as_csv(world, operator):
    from doorkeep.licensing.models import Product

    client = world.client(operator)
    product = Product.objects.get(sku="KEYS-25")
    response = client.post(
        "/admin/licensing/codebatch/add/", {"product": product.pk, "size": 4, "note": "admin batch"}
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 4
    redeem_for_lock(world.alice, world.lock.pk, rows[0]["code"])
    assert licence_of(world.lock.pk).keys_purchased == 50


def test_people_without_staff_rights_do_not_get_the_admin(world):
    response = world.client(world.alice).get("/admin/licensing/codebatch/add/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_reminders_go_out_28_7_and_1_days_before_the_end_once_each(world, time_machine):
    end = licence_of(world.lock.pk).full_until
    assert end is not None
    time_machine.move_to(end - timedelta(days=40), tick=False)
    assert send_reminders() == 0
    for days in (28, 7, 1):
        time_machine.move_to(end - timedelta(days=days, hours=-1), tick=False)
        mail.outbox.clear()
        assert send_reminders() == 1
        assert send_reminders() == 0  # once each
        (message,) = mail.outbox
        assert message.to == ["alice@example.com"]
        assert "Front door lock" in message.subject
        assert f"/locks/{world.lock.pk}/licence/" in message.body
    assert Reminder.objects.count() == 3
    time_machine.move_to(end + timedelta(hours=1), tick=False)
    assert send_reminders() == 0  # ended: nothing more to remind of


def test_a_reminder_gives_the_end_in_the_time_zone_of_the_lock_s_property(world, time_machine):
    # 23:30 UTC on 20 January is 00:30 on the 21st in Amsterdam (the property's zone).
    end = datetime(2031, 1, 20, 23, 30, tzinfo=UTC)
    Period.objects.filter(lock=world.lock, kind=PeriodKind.FREE).update(ends_at=end)
    time_machine.move_to(end - timedelta(days=6), tick=False)

    assert send_reminders() == 1

    (message,) = mail.outbox
    assert message.subject.endswith("ends on 2031-01-21")
    assert "ends on 2031-01-21 00:30 (Europe/Amsterdam)." in message.body


def test_a_late_first_run_sends_only_the_most_urgent_reminder(world, time_machine):
    end = licence_of(world.lock.pk).full_until
    time_machine.move_to(end - timedelta(hours=12), tick=False)
    assert send_reminders() == 1
    assert len(mail.outbox) == 1
    assert set(Reminder.objects.values_list("days_before", flat=True)) == {28, 7, 1}


def test_extending_management_starts_the_reminders_afresh_for_the_new_end(world, time_machine):
    end = licence_of(world.lock.pk).full_until
    time_machine.move_to(end - timedelta(days=6), tick=False)
    assert send_reminders() == 1
    from doorkeep.licensing.services import generate_batch

    _batch, (fresh,) = generate_batch(None, "MGMT-5Y", 1)
    redeem_for_lock(world.alice, world.lock.pk, fresh)
    assert send_reminders() == 0  # the new end is five years away
    new_end = licence_of(world.lock.pk).full_until
    time_machine.move_to(new_end - timedelta(days=27), tick=False)
    assert send_reminders() == 1
