"""Prepaid codes: easy to read aloud and to type, hard to guess.

A code is 20 symbols from Crockford's base-32 alphabet (no I, L, O or U, so
no 1/I/L or 0/O confusion), shown in five groups of four::

    7KQ2-M9XW-4TNB-8HRC-J5DF

The first 19 symbols are random (95 bits); the last is a check symbol (Luhn
mod 32), which catches every single mistyped symbol and every swap of two
neighbours but one: Luhn mod 32 cannot see a 0 and a Z trade places. So codes
are made without a 0 next to a Z, and in every code we hand out a typo is
reported as a typo instead of "unknown code".
Reading is forgiving: case, spaces and dashes don't matter, and I/L read as
1, O as 0.

Only a SHA-256 digest of the normalised code is stored. With 95 random bits
a fast hash is enough: there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUE = {symbol: index for index, symbol in enumerate(ALPHABET)}
_READ_AS = {"I": "1", "L": "1", "O": "0"}
LENGTH = 20
GROUP = 4


class CodeFormatError(ValueError):
    """Not a code: wrong length or characters outside the alphabet."""


class CodeTypoError(ValueError):
    """The right shape, but the check symbol does not match: a typo."""


def _check_symbol(body: str) -> str:
    """Luhn mod N over base 32: doubling every second symbol from the right."""
    total = 0
    factor = 2
    for symbol in reversed(body):
        addend = factor * _VALUE[symbol]
        addend = addend // 32 + addend % 32
        total += addend
        factor = 1 if factor == 2 else 2
    return ALPHABET[(32 - total % 32) % 32]


# The one swap of neighbours that Luhn mod 32 does not detect: 0 and Z (0 and
# 31 gain the same, nothing, from being doubled).
_BLIND_PAIRS = ("0Z", "Z0")


def generate() -> str:
    while True:
        code = with_check("".join(secrets.choice(ALPHABET) for _ in range(LENGTH - 1)))
        if not any(pair in code.replace("-", "") for pair in _BLIND_PAIRS):
            return code


def with_check(body: str) -> str:
    """A formatted code from its 19-symbol body (the demo uses fixed bodies)."""
    if len(body) != LENGTH - 1 or any(ch not in _VALUE for ch in body):
        raise CodeFormatError(body)
    return format_code(body + _check_symbol(body))


def format_code(code: str) -> str:
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def normalize(text: str) -> str:
    """The canonical 20 symbols of a typed code. Raises CodeFormatError or CodeTypoError."""
    cleaned = "".join(ch for ch in text.upper() if ch not in " -_.\t")
    cleaned = "".join(_READ_AS.get(ch, ch) for ch in cleaned)
    if len(cleaned) != LENGTH or any(ch not in _VALUE for ch in cleaned):
        raise CodeFormatError(text)
    if _check_symbol(cleaned[:-1]) != cleaned[-1]:
        raise CodeTypoError(text)
    return cleaned


def digest(code: str) -> str:
    return hashlib.sha256(("doorkeep.prepaid:" + code).encode()).hexdigest()
