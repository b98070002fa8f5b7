"""keys.credentials: what a person presents, normalised."""

from __future__ import annotations

import pytest

from doorkeep.core.errors import InvalidInput
from doorkeep.keys import credentials
from doorkeep.keys.models import CredentialKind


@pytest.mark.parametrize(
    ("value", "pin"),
    [("1234", "1234"), (" 12345678 ", "12345678"), ("0000", "0000"), ("007007", "007007")],
)
def test_a_pin_is_4_to_8_digits(value, pin):
    assert credentials.normalize_pin(value) == pin


@pytest.mark.parametrize(
    "value",
    [
        "123",
        "123456789",
        "12a4",
        "",
        "    ",
        "12 34",
        "+1234",
        "1234\n5",
        "\u0661\u0662\u0663\u0664",
        "\uff11\uff12\uff13\uff14",
        "1234\x00",
    ],
)
def test_anything_else_is_not_a_pin(value):
    with pytest.raises(InvalidInput) as caught:
        credentials.normalize_pin(value)

    assert caught.value.code == "invalid_pin"


def test_a_pin_is_kept_only_as_a_keyed_digest(settings):
    presented = credentials.presented("pin", "123456")

    assert presented.kind == CredentialKind.PIN
    assert presented.display == "••••"  # the length is not revealed
    assert "123456" not in presented.lookup
    assert len(presented.lookup) == 64
    assert presented.lookup == credentials.pin_digest("123456")
    assert credentials.pin_digest("123456") != credentials.pin_digest("1234560")


def test_the_pin_digest_depends_on_the_secret(settings):
    settings.DOORKEEP_PIN_SECRET = ""
    from_secret_key = credentials.pin_digest("1234")
    settings.DOORKEEP_PIN_SECRET = "another secret"
    with_pin_secret = credentials.pin_digest("1234")
    settings.SECRET_KEY = "changed-" + settings.SECRET_KEY

    assert from_secret_key != with_pin_secret
    assert credentials.pin_digest("1234") == with_pin_secret


@pytest.mark.parametrize(
    ("value", "uid"),
    [
        ("04:a2:2b:1c", "04A22B1C"),
        ("04 A2 2B 1C", "04A22B1C"),
        ("04-a2-2b-1c", "04A22B1C"),
        ("04.a2.2b.1c", "04A22B1C"),
        ("0x04A22B1C", "04A22B1C"),
        ("  04a22b1c  ", "04A22B1C"),
        ("04A22B1C5D6E7F", "04A22B1C5D6E7F"),
        ("04:A2:2B:1C:5D:6E:7F:80:91:A2", "04A22B1C5D6E7F8091A2"),
    ],
)
def test_a_tag_uid_is_upper_case_hex_without_separators(value, uid):
    assert credentials.normalize_tag(value) == uid
    assert credentials.presented("tag", value).display == uid


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("04:a2:2b:1c:5d", "this one has 10 digits"),
        ("04a22b", "this one has 6 digits"),
        ("04a22b1c5d6e7f80", "this one has 16 digits"),
        ("04g22b1c", "hexadecimal"),
        ("", "hexadecimal"),
        ("0x", "hexadecimal"),
        ("\u0660\u0664a22b1c", "hexadecimal"),
    ],
)
def test_a_tag_uid_of_the_wrong_length_or_alphabet_is_refused(value, words):
    with pytest.raises(InvalidInput, match=words) as caught:
        credentials.normalize_tag(value)

    assert caught.value.code == "invalid_tag"


@pytest.mark.parametrize(
    ("value", "serial"), [("rm-0001", "RM-0001"), (" RM 0001 ", "RM0001"), ("abc", "ABC")]
)
def test_a_remote_serial_is_upper_case(value, serial):
    assert credentials.normalize_remote(value) == serial


@pytest.mark.parametrize("value", ["ab", "-RM1", "RM_0001", "RM:0001", "x" * 33, ""])
def test_a_remote_serial_that_cannot_be_one_is_refused(value):
    with pytest.raises(InvalidInput) as caught:
        credentials.normalize_remote(value)

    assert caught.value.code == "invalid_remote"


def test_a_phone_credential_is_the_persons_id():
    presented = credentials.presented("phone", "42")

    assert (presented.kind, presented.lookup, presented.display) == ("phone", "42", "Phone")


def test_an_unknown_kind_is_refused():
    with pytest.raises(InvalidInput) as caught:
        credentials.presented("retina", "x")

    assert caught.value.code == "invalid_credential_kind"
