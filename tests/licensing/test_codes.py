"""Prepaid codes: how they look, how they are stored, how a typed code is
read, every way one is refused, the event log, rate limits and races."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from django.db import connection

from doorkeep.core.errors import NotFound, PermissionDenied, RateLimited
from doorkeep.events.models import Event, EventKind
from doorkeep.licensing import codes, services
from doorkeep.licensing.models import CodeBatch, Period, PeriodKind, PrepaidCode, Product
from doorkeep.licensing.services import (
    CodeRefused,
    Redemption,
    generate_batch,
    redeem_for_lock,
    redeem_for_organization,
)
from doorkeep.licensing.state import licence_of

SHAPE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){4}$")


def stored(body: str, sku: str = "MGMT-5Y") -> str:
    """A code with a chosen 19-symbol body, stored as a batch of one."""
    plain = codes.with_check(body)
    batch = CodeBatch.objects.create(product=Product.objects.get(sku=sku), size=1)
    PrepaidCode.objects.create(batch=batch, digest=codes.digest(codes.normalize(plain)))
    return plain


def is_used(plain: str) -> bool:
    return (
        PrepaidCode.objects.get(digest=codes.digest(codes.normalize(plain))).redeemed_at is not None
    )


# --- generating -----------------------------------------------------------------------------------


def test_a_batch_has_the_number_of_distinct_codes_asked_for(db):
    batch, plain = generate_batch(None, "KEYS-25", 200, note="reseller A")

    assert len(plain) == len(set(plain)) == 200 == batch.size
    assert all(SHAPE.match(c) for c in plain)
    assert batch.codes.count() == 200
    assert set(batch.codes.values_list("digest", flat=True)) == {
        codes.digest(codes.normalize(c)) for c in plain
    }


def test_a_code_is_20_symbols_in_5_groups_of_4(db):
    _batch, (plain,) = generate_batch(None, "MGMT-5Y", 1)

    groups = plain.split("-")
    assert [len(g) for g in groups] == [4, 4, 4, 4, 4]
    assert not set(plain) & set("ILOU")


def test_the_plain_codes_are_stored_nowhere(world):
    _batch, plain = generate_batch(None, "MGMT-5Y", 5, note="for the test")
    redeem_for_lock(world.alice, world.lock.pk, plain[0])
    with pytest.raises(CodeRefused):
        redeem_for_lock(world.alice, world.lock.pk, plain[1][:-1] + "#")

    dump = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            dump.extend(str(row) for row in cursor.fetchall())
    text = "\n".join(dump).upper()
    for code in plain:
        compact = code.replace("-", "")
        assert code not in text
        assert compact not in text
        assert compact[:12] not in text


def test_an_unknown_product_or_a_bad_count_or_expiry_is_refused(db):
    with pytest.raises(NotFound) as unknown:
        generate_batch(None, "NOPE", 1)
    assert unknown.value.code == "unknown_product"
    assert "MGMT-5Y" in unknown.value.message
    for count in (0, 10_001):
        with pytest.raises(Exception) as bad:
            generate_batch(None, "MGMT-5Y", count)
        assert getattr(bad.value, "code", "") == "invalid_count"


def test_only_a_platform_operator_generates_codes(world):
    with pytest.raises(NotFound):
        generate_batch(world.alice, "MGMT-5Y", 1)
    assert not PrepaidCode.objects.exists()


# --- the check symbol -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def many() -> list[str]:
    return [codes.generate().replace("-", "") for _ in range(60)]


def test_every_single_mistyped_symbol_is_a_typo(many):
    for code in many:
        for position in range(codes.LENGTH):
            for symbol in codes.ALPHABET:
                if symbol == code[position]:
                    continue
                typed = code[:position] + symbol + code[position + 1 :]
                with pytest.raises(codes.CodeTypoError):
                    codes.normalize(typed)


def test_every_swap_of_two_neighbours_in_a_code_we_hand_out_is_a_typo(many):
    for code in many:
        for position in range(codes.LENGTH - 1):
            a, b = code[position], code[position + 1]
            if a == b:
                continue
            typed = code[:position] + b + a + code[position + 2 :]
            with pytest.raises(codes.CodeTypoError):
                codes.normalize(typed)


def test_a_0_and_a_z_trading_places_is_the_one_swap_the_check_cannot_see():
    plain = codes.with_check("ABC0ZDEFGHJKMNPQRST").replace("-", "")
    swapped = plain.replace("0Z", "Z0")

    assert codes.normalize(swapped) == swapped  # so no code we hand out has them side by side


def test_generated_codes_never_have_a_0_next_to_a_z(monkeypatch):
    bodies = iter(["ABC0ZDEFGHJKMNPQRST", "ABCZ0DEFGHJKMNPQRST", "ABC00DEFGHJKMNPQRST"])
    current: list[str] = []

    def choice(_alphabet):
        if not current:
            current.extend(next(bodies))
        return current.pop(0)

    monkeypatch.setattr(codes.secrets, "choice", choice)

    assert codes.generate().startswith("ABC0-0DEF")


def test_a_code_is_read_whatever_its_case_and_separators(db):
    plain = stored("7KQ2M9XW4TNB8HRCJ5D")
    compact = plain.replace("-", "")
    canonical = codes.normalize(plain)

    for typed in (
        plain.lower(),
        compact,
        compact.lower(),
        " ".join(plain.split("-")),
        f"  {plain}  ",
        plain.replace("-", "."),
        plain.replace("-", "_"),
        "-".join(compact[i : i + 5] for i in range(0, 20, 5)),
    ):
        assert codes.normalize(typed) == canonical, typed


def test_i_and_l_are_read_as_1_and_o_as_0(world):
    plain = stored("10K1MN0P1QR0ST1VW0X")
    typed = plain.replace("1", "I").replace("0", "o")
    typed = typed[:4] + typed[4:].replace("I", "l", 1)

    result = redeem_for_lock(world.alice, world.lock.pk, typed)

    assert result.product.sku == "MGMT-5Y"
    assert is_used(plain)


# --- refusals -------------------------------------------------------------------------------------


def _refused(world, typed: str, lock_id: int | None = None) -> CodeRefused:
    with pytest.raises(CodeRefused) as refused:
        redeem_for_lock(world.alice, lock_id or world.lock.pk, typed)
    return refused.value


def _swap_neighbours(plain: str) -> str:
    compact = plain.replace("-", "")
    for i in range(len(compact) - 1):
        if compact[i] != compact[i + 1]:
            return compact[:i] + compact[i + 1] + compact[i] + compact[i + 2 :]
    raise AssertionError(plain)


def test_a_code_with_one_wrong_symbol_is_a_typo(world, code):
    plain = code("MGMT-5Y")
    wrong = ("1" if plain[5] != "1" else "2").join((plain[:5], plain[6:]))

    refused = _refused(world, wrong)

    assert (refused.code, refused.status) == ("code_typo", 400)
    assert "typo" in refused.message
    assert not is_used(plain)


def test_a_code_with_two_neighbours_swapped_is_a_typo(world, code):
    plain = code("MGMT-5Y")

    assert _refused(world, _swap_neighbours(plain)).code == "code_typo"
    assert not is_used(plain)


@pytest.mark.parametrize(
    "typed",
    ["", "hello", "1234-5678", "7KQ2-M9XW-4TNB-8HRC-J5D", "7KQ2-M9XW-4TNB-8HRC-J5DFF", "U" * 20],
)
def test_something_that_is_not_a_code_is_not_a_code(world, typed):
    refused = _refused(world, typed)

    assert (refused.code, refused.status) == ("not_a_code", 400)
    assert "20 letters and digits" in refused.message


def test_a_well_formed_code_nobody_sold_is_unknown(world):
    refused = _refused(world, codes.generate())

    assert (refused.code, refused.status) == ("unknown_code", 404)


def test_a_code_works_once(world, code, register):
    plain = code("MGMT-5Y")
    redeem_for_lock(world.alice, world.lock.pk, plain)
    other = register("DK-CODE-0002")

    refused = _refused(world, plain, other.pk)

    assert (refused.code, refused.status) == ("code_used", 409)
    assert _refused(world, plain).code == "code_used"
    assert Period.objects.filter(kind=PeriodKind.MANAGEMENT).count() == 1


def test_a_code_of_an_expired_batch_is_refused(world, code, travel, now):
    plain = code("MGMT-5Y", expires_at=now + timedelta(days=1))
    travel(now + timedelta(days=1))

    refused = _refused(world, plain)

    assert (refused.code, refused.status) == ("code_expired", 400)
    assert not is_used(plain)


def test_a_code_of_a_batch_that_expires_later_works(world, code, now):
    plain = code("MGMT-5Y", expires_at=now + timedelta(days=1))

    redeem_for_lock(world.alice, world.lock.pk, plain)

    assert is_used(plain)


def test_an_account_upgrade_entered_on_a_lock_is_the_wrong_product(world, code):
    plain = code("ORG-MGMT")

    refused = _refused(world, plain)

    assert refused.code == "wrong_product"
    assert "Account upgrades" in refused.message
    assert not is_used(plain)


@pytest.mark.parametrize("sku", ["MGMT-5Y", "ORGS-5Y", "KEYS-25"])
def test_a_lock_code_entered_as_an_account_upgrade_is_the_wrong_product(world, code, sku):
    plain = code(sku)

    with pytest.raises(CodeRefused) as refused:
        redeem_for_organization(world.alice, world.org.pk, plain)

    assert refused.value.code == "wrong_product"
    assert "licence panel" in refused.value.message
    assert not is_used(plain)
    assert world.org.__class__.objects.get(pk=world.org.pk).organization_management_since is None


def test_only_a_lock_owner_of_the_lock_enters_codes(world, code):
    plain = code("MGMT-5Y")

    with pytest.raises(PermissionDenied) as member:
        redeem_for_lock(world.bob, world.lock.pk, plain)
    with pytest.raises(NotFound):
        redeem_for_lock(world.charlie, world.lock.pk, plain)

    assert "Only lock owners can enter prepaid codes" in member.value.message
    assert not is_used(plain)
    assert not Event.objects.filter(kind__startswith="code.").exists()


# --- the event log --------------------------------------------------------------------------------


def test_every_code_entered_and_every_refusal_is_in_the_event_log(world, code, travel, now):
    expired = code("KEYS-25", expires_at=now + timedelta(hours=1))
    used = code("KEYS-25")
    redeem_for_lock(world.alice, world.lock.pk, used)
    attempts = [
        (codes.generate(), "unknown_code"),
        ("not a code", "not_a_code"),
        (_swap_neighbours(code("KEYS-25")), "code_typo"),
        (used, "code_used"),
        (code("ORG-MGMT"), "wrong_product"),
        (code("ORGS-5Y"), "option_needs_management"),
    ]
    for typed, _reason in attempts:
        _refused(world, typed)
    travel(now + timedelta(hours=2))
    _refused(world, expired)

    refusals = Event.objects.filter(kind=EventKind.CODE_REFUSED).order_by("id")
    assert [e.reason for e in refusals] == [r for _t, r in attempts] + ["code_expired"]
    assert all(e.lock_id == world.lock.pk and e.actor_id == world.alice.pk for e in refusals)
    assert all(e.organization_id == world.org.pk and e.summary for e in refusals)
    assert Event.objects.filter(kind=EventKind.CODE_REDEEMED).count() == 1


def test_an_organization_code_entered_or_refused_is_in_the_organizations_event_log(world, code):
    redeem_for_organization(world.alice, world.org.pk, code("ORG-MGMT"))
    with pytest.raises(CodeRefused):
        redeem_for_organization(world.alice, world.org.pk, "nonsense")

    kinds = list(
        Event.objects.filter(organization=world.org, kind__startswith="code.")
        .order_by("id")
        .values_list("kind", "reason")
    )
    assert kinds == [(EventKind.CODE_REDEEMED, ""), (EventKind.CODE_REFUSED, "not_a_code")]


# --- rate limits ----------------------------------------------------------------------------------


@pytest.fixture
def three_per_hour(settings):
    settings.DOORKEEP = {**settings.DOORKEEP, "CODE_ATTEMPTS_PER_HOUR": 3}


@pytest.fixture
def charlies_lock(world, register):
    return register("DK-CHAR-0001", by=world.charlie, entry_id=world.charlie_entry.pk)


def _wrong(world, user, lock_id, ip: str) -> None:
    with pytest.raises(CodeRefused):
        redeem_for_lock(user, lock_id, codes.generate(), client_ip=ip)


def test_too_many_wrong_codes_from_one_account_wait_an_hour(
    world, code, three_per_hour, travel, now
):
    for n in range(3):
        _wrong(world, world.alice, world.lock.pk, f"10.0.0.{n}")
    plain = code("MGMT-5Y")

    with pytest.raises(RateLimited) as limited:
        redeem_for_lock(world.alice, world.lock.pk, plain, client_ip="10.0.0.9")

    assert (limited.value.code, limited.value.status) == ("rate_limited", 429)
    assert 0 < limited.value.details["retry_after"] <= 3601
    assert not is_used(plain)
    travel(now + timedelta(hours=1, seconds=1))
    redeem_for_lock(world.alice, world.lock.pk, plain, client_ip="10.0.0.9")
    assert is_used(plain)


def test_too_many_wrong_codes_from_one_address_stop_a_new_account_there(
    world, code, three_per_hour, charlies_lock, settings
):
    settings.DOORKEEP = {**settings.DOORKEEP, "CODE_ATTEMPTS_PER_ADDRESS_PER_HOUR": 3}
    for _ in range(3):
        _wrong(world, world.alice, world.lock.pk, "192.0.2.7")

    with pytest.raises(RateLimited):
        redeem_for_lock(world.charlie, charlies_lock.pk, code("KEYS-25"), client_ip="192.0.2.7")
    redeem_for_lock(world.charlie, charlies_lock.pk, code("KEYS-25"), client_ip="192.0.2.8")


def test_attempts_without_an_address_count_only_for_their_account(
    world, code, three_per_hour, charlies_lock
):
    for _ in range(3):
        _wrong(world, world.alice, world.lock.pk, "")

    redeem_for_lock(world.charlie, charlies_lock.pk, code("KEYS-25"))
    with pytest.raises(RateLimited):
        redeem_for_lock(world.alice, world.lock.pk, code("KEYS-25"))


def test_codes_that_work_do_not_count_towards_the_limit(world, code, three_per_hour):
    for _ in range(5):
        redeem_for_lock(world.alice, world.lock.pk, code("KEYS-25"), client_ip="10.1.1.1")

    assert licence_of(world.lock.pk).keys_purchased == 25 * 6


def test_wrong_lock_codes_also_hold_back_account_upgrade_codes(world, code, three_per_hour):
    for _ in range(3):
        _wrong(world, world.alice, world.lock.pk, "10.2.2.2")

    with pytest.raises(RateLimited):
        redeem_for_organization(world.alice, world.org.pk, code("ORG-MGMT"))


def test_an_attempt_refused_by_the_rate_limit_is_in_the_event_log_too(world, code, three_per_hour):
    for _ in range(3):
        _wrong(world, world.alice, world.lock.pk, "10.3.3.3")

    with pytest.raises(RateLimited):
        redeem_for_lock(world.alice, world.lock.pk, code("KEYS-25"), client_ip="10.3.3.3")

    last = Event.objects.filter(kind=EventKind.CODE_REFUSED).latest("id")
    assert (last.reason, last.lock_id) == ("rate_limited", world.lock.pk)


# --- two at once ----------------------------------------------------------------------------------


def _in_threads(count, work):
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(index):
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="PostgreSQL only: SQLite serializes writers (BEGIN IMMEDIATE), so the interleaving "
    "this race forces cannot happen there; CI runs it on PostgreSQL",
)
@pytest.mark.django_db(transaction=True)
def test_one_code_entered_for_two_locks_at_the_same_moment_works_for_exactly_one(
    world, code, register, monkeypatch
):
    plain = code("MGMT-5Y")
    locks = [world.lock, register("DK-RACE-0002")]
    # Both read the code as unused before either marks it used: the worst case.
    both_checked = threading.Barrier(2)
    check = services._check_code

    def check_then_wait(*args, **kwargs):
        found = check(*args, **kwargs)
        both_checked.wait(timeout=10)
        return found

    monkeypatch.setattr(services, "_check_code", check_then_wait)

    results = _in_threads(2, lambda n: redeem_for_lock(world.alice, locks[n].pk, plain))

    won = [r for r in results if isinstance(r, Redemption)]
    lost = [r for r in results if isinstance(r, CodeRefused)]
    assert len(won) == 1 and len(lost) == 1, results
    assert lost[0].code == "code_used"
    periods = Period.objects.filter(kind=PeriodKind.MANAGEMENT)
    assert periods.count() == 1
    winner = periods.get().lock_id
    row = PrepaidCode.objects.get(digest=codes.digest(codes.normalize(plain)))
    assert row.lock_id == winner
    assert Event.objects.filter(kind=EventKind.CODE_REDEEMED).count() == 1
    assert Event.objects.get(kind=EventKind.CODE_REFUSED).reason == "code_used"
