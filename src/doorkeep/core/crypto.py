"""Secrets that the platform must read again (a panel's seed and tag keys, a
webhook's signing secret) are stored encrypted: Fernet (AES-128-CBC with
HMAC-SHA256) under the keys of DOORKEEP_ENCRYPTION_KEYS. The first key
encrypts; every key decrypts, so that a new key can be put first, every
stored secret re-encrypted with it (``rotate``, `doorkeep rotate-keys`), and
the old key removed afterwards (docs/operations.md).

Models declare such a column as ``EncryptedTextField``: the model sees the
plain value, the database only ``enc1:`` and the token. A value without the
prefix is read as it is: rows written before encryption, until the data
migration (or ``rotate``) has encrypted them."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.db import models, transaction

PREFIX = "enc1:"


class SecretUnreadable(RuntimeError):
    """A stored secret that none of the configured keys decrypts: a key was
    removed before every secret was re-encrypted with the new one."""


@lru_cache(maxsize=4)
def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def _current() -> MultiFernet:
    return _cipher(tuple(settings.DOORKEEP_ENCRYPTION_KEYS))


def new_key() -> str:
    """A fresh key, to put first in DOORKEEP_ENCRYPTION_KEYS."""
    return Fernet.generate_key().decode()


def seal(plain: str) -> str:
    """``plain`` encrypted with the first key, as stored."""
    return PREFIX + _current().encrypt(plain.encode()).decode()


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


def unseal(stored: str) -> str:
    """The plain value of a stored secret (an unencrypted one as it is)."""
    if not is_sealed(stored):
        return stored
    try:
        return _current().decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "a stored secret cannot be decrypted with any key of DOORKEEP_ENCRYPTION_KEYS; "
            "put back the key it was encrypted with (docs/operations.md, rotating the key)"
        ) from None


class EncryptedTextField(models.TextField):
    """A text column stored encrypted (see the module's docstring). It cannot
    be searched by value. The empty string stays empty."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        return None if value is None else unseal(value)

    def get_prep_value(self, value: Any) -> Any:
        # Always sealed, even a value that looks sealed: what is saved is a
        # plain value (read through this field, or given by a person), and a
        # given "enc1:..." stored as it is would be unreadable for ever.
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return seal(value)


def _rows(rows: models.QuerySet[Any], names: list[str], batch: int = 500) -> Iterator[Any]:
    """The rows with only their pk and ``names``, fetched in batches by pk
    (not through a server-side cursor, which a failed row would leave behind)."""
    last = None
    while True:
        chunk = rows.only("pk", *names).order_by("pk")
        found = list((chunk if last is None else chunk.filter(pk__gt=last))[:batch])
        yield from found
        if len(found) < batch:
            return
        last = found[-1].pk


def encrypted_fields() -> list[tuple[type[models.Model], list[str]]]:
    """Every model with encrypted columns, and the columns' names."""
    found = []
    for model in apps.get_models():
        names = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if names:
            found.append((model, names))
    return found


def rotate() -> dict[str, int]:
    """Re-encrypt every stored secret with the first key (and encrypt any
    still stored plain). Rows per model, by ``app_label.Model``. Raises
    SecretUnreadable, changing nothing of that model, if one cannot be read."""
    done: dict[str, int] = {}
    for model, names in encrypted_fields():
        manager = model._base_manager
        count = 0
        with transaction.atomic():
            for row in _rows(manager.select_for_update(), names):
                values = {name: getattr(row, name) for name in names}
                manager.filter(pk=row.pk).update(**values)
                count += 1
        done[model._meta.label] = count
    return done


def encrypt_stored(model: type[models.Model], names: list[str]) -> None:
    """For data migrations: encrypt the columns ``names`` of every row still
    stored plain (saving through the field encrypts)."""
    for row in _rows(model._base_manager.all(), names):
        model._base_manager.filter(pk=row.pk).update(**{n: getattr(row, n) for n in names})


def decrypt_stored(model: type[models.Model], names: list[str]) -> None:
    """For data migrations going back: store the columns plain again."""
    for row in _rows(model._base_manager.all(), names):
        plain = {n: models.Value(getattr(row, n)) for n in names}
        model._base_manager.filter(pk=row.pk).update(**plain)
