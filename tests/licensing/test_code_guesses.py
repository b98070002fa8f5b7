"""Wrong prepaid codes (docs/decisions/0021-limits-per-account-and-address.md):
only guesses count, the address limit spares an office's colleagues, and a
burst of guesses gets exactly the limit through."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from doorkeep.accounts.models import Membership, Role, User
from doorkeep.accounts.services import create_user
from doorkeep.core import ratelimit
from doorkeep.core.errors import RateLimited
from doorkeep.licensing import codes
from doorkeep.licensing.services import CodeRefused, redeem_for_lock, redeem_for_organization
from doorkeep.licensing.state import licence_of

OFFICE = "192.0.2.7"


@pytest.fixture
def limits(settings):
    settings.DOORKEEP = {
        **settings.DOORKEEP,
        "CODE_ATTEMPTS_PER_HOUR": 3,
        "CODE_ATTEMPTS_PER_ADDRESS_PER_HOUR": 4,
    }


@pytest.fixture
def charlies_lock(world, register):
    return register("DK-CHAR-0001", by=world.charlie, entry_id=world.charlie_entry.pk)


def joined_days_ago(user, days):
    User.objects.filter(pk=user.pk).update(date_joined=timezone.now() - timedelta(days=days))
    user.refresh_from_db()


def refused(user, lock_id, plain, ip=OFFICE) -> str:
    with pytest.raises(CodeRefused) as caught:
        redeem_for_lock(user, lock_id, plain, client_ip=ip)
    return caught.value.code


def test_a_used_code_entered_again_and_again_is_not_a_guess(world, code, limits):
    plain = code("KEYS-25")
    redeem_for_lock(world.alice, world.lock.pk, plain, client_ip=OFFICE)

    answers = {refused(world.alice, world.lock.pk, plain) for _ in range(6)}
    redeem_for_lock(world.alice, world.lock.pk, code("KEYS-25"), client_ip=OFFICE)

    assert answers == {"code_used"}
    assert licence_of(world.lock.pk).keys_purchased == 25 * 3


def test_a_code_for_the_other_kind_of_product_is_not_a_guess(world, code, limits):
    upgrade = code("ORG-MGMT")

    answers = {refused(world.alice, world.lock.pk, upgrade) for _ in range(6)}
    redeem_for_organization(world.alice, world.org.pk, upgrade, client_ip=OFFICE)

    assert answers == {"wrong_product"}


def test_an_unknown_code_is_a_guess(world, code, limits):
    answers = [refused(world.alice, world.lock.pk, codes.generate()) for _ in range(3)]

    with pytest.raises(RateLimited):
        redeem_for_lock(world.alice, world.lock.pk, code("KEYS-25"), client_ip=OFFICE)
    assert answers == ["unknown_code"] * 3


def fill_address(address=OFFICE):
    """Guesses from others at ``address`` used up its budget (4)."""
    for _ in range(4):
        ratelimit.take(f"code:ip:{address}", limit=4, window=timedelta(hours=1), message="")


def test_once_an_address_used_up_its_guesses_a_colleague_there_still_enters_codes(
    world, code, limits, charlies_lock
):
    dave = create_user("dave@example.com", "correct horse battery staple")
    Membership.objects.create(user=dave, organization=world.org, role=Role.LOCK_OWNER)
    for guesser in (world.alice, world.alice, world.alice, dave):
        assert refused(guesser, world.lock.pk, codes.generate()) == "unknown_code"
    with pytest.raises(RateLimited):  # the address's budget is used up
        redeem_for_lock(dave, world.lock.pk, code("KEYS-25"), client_ip=OFFICE)
    joined_days_ago(world.charlie, 30)

    redeem_for_lock(world.charlie, charlies_lock.pk, code("KEYS-25"), client_ip=OFFICE)
    redeem_for_lock(world.charlie, charlies_lock.pk, code("KEYS-25"), client_ip=OFFICE)

    assert licence_of(charlies_lock.pk).keys_purchased == 25 * 3


def test_past_the_address_limit_a_colleague_gets_one_guess_an_hour(
    world, code, limits, charlies_lock, travel, now
):
    fill_address()
    joined_days_ago(world.charlie, 30)

    assert refused(world.charlie, charlies_lock.pk, codes.generate()) == "unknown_code"
    with pytest.raises(RateLimited):
        redeem_for_lock(world.charlie, charlies_lock.pk, code("KEYS-25"), client_ip=OFFICE)
    redeem_for_lock(world.charlie, charlies_lock.pk, code("KEYS-25"), client_ip="192.0.2.8")
    travel(now + timedelta(hours=1, seconds=1))
    redeem_for_lock(world.charlie, charlies_lock.pk, code("KEYS-25"), client_ip=OFFICE)


def test_an_account_made_today_gets_no_guess_past_the_address_limit(
    world, code, limits, charlies_lock
):
    fill_address()

    with pytest.raises(RateLimited):
        redeem_for_lock(world.charlie, charlies_lock.pk, code("KEYS-25"), client_ip=OFFICE)


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_wrong_codes_from_one_account_gets_exactly_the_limit_through(world, settings):
    settings.DOORKEEP = {**settings.DOORKEEP, "CODE_ATTEMPTS_PER_HOUR": 10}
    barrier = threading.Barrier(16)
    answers: list[str] = []

    def guess() -> None:
        try:
            barrier.wait(timeout=10)
            redeem_for_lock(world.alice, world.lock.pk, codes.generate(), client_ip="10.9.9.9")
        except CodeRefused as exc:
            answers.append(exc.code)
        except RateLimited as exc:
            answers.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=guess) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(answers) == ["rate_limited"] * 6 + ["unknown_code"] * 10
