"""Small helpers shared by the licensing tests."""

from __future__ import annotations

import itertools
from datetime import datetime

from doorkeep.keys.models import Key
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key
from doorkeep.locks.models import Lock

_serials = itertools.count(1)


def spec(
    name: str,
    *,
    pin: str | None = None,
    remote: str | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
) -> KeySpec:
    credentials = []
    if pin:
        credentials.append(CredentialSpec("pin", pin))
    if remote or not credentials:
        credentials.append(CredentialSpec("remote", remote or f"RM-{next(_serials):06}"))
    return KeySpec(
        HolderSpec(name=name), credentials, valid_from=valid_from, valid_until=valid_until
    )


def give_key(actor, lock: Lock, name: str, **kwargs) -> Key:
    parent = kwargs.pop("parent", None)
    return issue_key(
        actor, lock.pk, spec(name, **kwargs), parent_key_id=parent.pk if parent else None
    )


def version(lock: Lock) -> int:
    return Lock.objects.get(pk=lock.pk).credential_version
