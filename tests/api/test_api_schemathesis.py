"""Schemathesis over the whole API, in-process: every operation of
/api/openapi.json gets generated requests (valid and invalid ones) as Alice,
through the same WSGI application `doorkeep serve` runs (with the fast unlock
path in front). No answer may be a server error, and every answer must be one
the operation's OpenAPI lists, with the content type and body schema it says.

Bounded so that it takes well under a minute on two cores: a few examples per
operation (SCHEMATHESIS_EXAMPLES, 4 unless set), no shrinking, and Hypothesis'
database off so that each run is the same kind of run
(docs/development.md)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from doorkeep.accounts.services import create_token
from doorkeep.api.fast import FastUnlock

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "4"))


@schemathesis.check
def not_a_server_fault(ctx: Any, response: Any, case: Any) -> None:
    """not_a_server_error, less 503 and 504: a device that is offline or
    silent is an answer the API documents (lock_offline, lock_timeout)."""
    if response.status_code not in (503, 504):
        not_a_server_error(ctx, response, case)


CHECKS = [
    not_a_server_fault,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def in_process(world: Any) -> Iterator[Any]:
    """The WSGI application, called in this thread inside the test's
    transaction (as Django's test client does, requests must not close the
    connection when they end)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield FastUnlock(get_wsgi_application())
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(in_process: Any) -> Any:
    return schemathesis.openapi.from_wsgi("/api/openapi.json", in_process)


@pytest.fixture
def alice_token(world: Any) -> str:
    _row, token = create_token(world.alice, "schemathesis")
    return token


def run_operation(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> None:
    @given(operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


def test_no_api_operation_answers_a_server_error_or_off_its_schema(
    api_schema: Any, alice_token: str
) -> None:
    headers = {"Authorization": f"Bearer {alice_token}"}
    failures = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                run_operation(operation, mode, headers)
            except (Exception, FailureGroup) as exc:
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:1500]}")
    assert operations > 100
    assert not failures, f"{len(failures)} failing:\n\n" + "\n\n".join(failures)
