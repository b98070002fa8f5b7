"""Browser tests: the real pages in headless Chromium (Debian's, at
/usr/bin/chromium; Playwright never downloads a browser of its own), driven by
Playwright's sync API.

- ``browser_page``: a fresh Chromium page whose relative URLs go to the live
  server (pytest-django's ``live_server``: the real web app on a free port,
  against the test database). Skips, saying why, when Chromium is missing.
  When a test fails, a screenshot and the HTML of each page open in the
  browser (other contexts too) are saved under
  ``$DOORKEEP_DATA_DIR/browser-failures/``.
- ``live_platform``: the world of tests/conftest.py served live, with a real
  gateway and Alice's lock connected to it as a simulated lock, so that an
  Open button on a page reaches the simulator.
- ``module_chromium``: one Chromium for all the tests of a module, which
  open pages in contexts of their own (``new_page``); for modules of many
  short looks at pages (the accessibility checks). ``demo_site``: the demo's
  data (`make run`), served live.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core import serializers
from django.core.management import call_command
from django.db import connections, transaction

sys.path.insert(0, str(Path(__file__).parent.parent / "gateway"))  # gateway_helpers

from browser_helpers import TIMEOUT_MS, sign_in_as
from gateway_helpers import DEVICE_SECRET, Running, start_gateway

from doorkeep.gateway.services import set_device_secret
from doorkeep.gateway.simulator import SimulatedLock
from doorkeep.licensing.models import Product

CHROMIUM = Path("/usr/bin/chromium")
# As root and on a closed network: no sandbox, and none of Chromium's own
# background connections (they are refused here, many at a time).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test, so that fixtures can tell
    whether it failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@pytest.fixture
def _async_unsafe_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Playwright's sync API keeps an event loop running in the test thread,
    and Django refuses ORM calls from a thread with a running loop. These
    tests make such calls between browser steps, one at a time, so that is
    safe here; only for the length of a browser test. Those calls use
    database connections of their own, which ``browser_page`` closes."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def browser_page(
    request: pytest.FixtureRequest, live_server: Any, _async_unsafe_allowed: None
) -> Iterator[Any]:
    """A page in a fresh headless Chromium; ``page.goto("/accounts/login/")``
    opens the live server's page."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"Chromium is not installed at {CHROMIUM}: "
            "`apt-get install chromium` (.ci/run does it) to run the browser tests"
        )
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(base_url=live_server.url, locale="en-US")
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        try:
            yield page
        finally:
            if any(r.failed for r in request.node.stash.get(_REPORTS, {}).values()):
                # Every page the test had open: some open more contexts (people).
                pages = [p for c in browser.contexts for p in c.pages]
                for number, each in enumerate(pages):
                    _save_failure(each, request.node.nodeid + (f"-{number}" if number else ""))
            context.close()
            browser.close()
            # With Playwright's loop running, Django keeps this thread's
            # database connections apart (per async context): close the ones
            # the test opened meanwhile, or they outlive the test database.
            connections.close_all()


def _save_failure(page: Any, nodeid: str) -> None:
    from django.conf import settings

    folder = Path(settings.DATA_DIR) / "browser-failures"
    folder.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1])
    try:
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
        (folder / f"{name}.html").write_text(page.content())
    except Exception as exc:  # the page may be gone; the test's own error matters more
        print(f"browser test: no screenshot of {page.url}: {exc}", file=sys.stderr)
        return
    print(f"browser test: page {page.url} saved as {folder / name}.png and .html", file=sys.stderr)


@dataclass
class LivePlatform:
    """The platform running for real: ``url`` is the web app, ``gateway``
    the device gateway, ``lock`` Alice's lock (world.lock) connected to it as
    a simulated lock (``lock.opened`` lists the remote unlocks it carried
    out)."""

    url: str
    world: Any
    gateway: Running
    lock: SimulatedLock


@pytest.fixture
def live_platform(
    transactional_db: None, world: Any, live_server: Any, _async_unsafe_allowed: None
) -> Iterator[LivePlatform]:
    running, stop = start_gateway()
    set_device_secret(world.lock, DEVICE_SECRET)
    lock = running.lock(world.lock.serial)
    try:
        running.run(lock.connect())
        yield LivePlatform(live_server.url, world, running, lock)
    finally:
        running.run(lock.go_offline())
        stop()


@dataclass
class ModuleChromium:
    """A Chromium shared by a module's tests, and the data the migrations put
    in the test database (see ``demo_site``)."""

    browser: Any
    migrated: str | None
    contexts: list[Any]

    def new_page(
        self, url: str, *, viewport: dict[str, int] | None = None, email: str | None = None
    ) -> Any:
        """A page in a fresh context: relative URLs go to ``url``; the given
        size (a phone's is_mobile and touch below 48rem wide); signed in as
        ``email`` when given. The test's contexts close when it ends."""
        phone = viewport is not None and viewport["width"] < 768
        context = self.browser.new_context(
            base_url=url,
            locale="en-US",
            viewport=viewport or {"width": 1280, "height": 800},
            is_mobile=phone,
            has_touch=phone,
        )
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        if email is not None:
            sign_in_as(context, url, email)
        return context.new_page()


@pytest.fixture(scope="module")
def _module_browser(django_db_setup: None, django_db_blocker: Any) -> Iterator[ModuleChromium]:
    if not CHROMIUM.exists():
        pytest.skip(
            f"Chromium is not installed at {CHROMIUM}: "
            "`apt-get install chromium` (.ci/run does it) to run the browser tests"
        )
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    migrated = getattr(connections["default"], "_test_serialized_contents", None)
    # Playwright's loop runs in this thread for the whole module: the ORM
    # calls of its tests and of their fixtures are made one at a time.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                yield ModuleChromium(browser, migrated, [])
            finally:
                browser.close()
    # The last test's flush ran on a connection of the loop's, which let
    # post_migrate fill the content types again; serialized rollback, in the
    # next module's first transactional test, expects empty tables.
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, inhibit_post_migrate=True, verbosity=0)


@pytest.fixture
def module_chromium(
    request: pytest.FixtureRequest, _module_browser: ModuleChromium, transactional_db: None
) -> Iterator[ModuleChromium]:
    """The module's Chromium, for one test, against the live server's
    database. While Playwright's loop runs Django hands out a database
    connection per async context, one that serialized rollback does not
    know: the migrations' data (the product catalogue) that the previous
    test's flush took away is put back here."""
    if _module_browser.migrated and not Product.objects.exists():
        _restore(_module_browser.migrated)
    try:
        yield _module_browser
    finally:
        if any(r.failed for r in request.node.stash.get(_REPORTS, {}).values()):
            pages = [p for c in _module_browser.contexts for p in c.pages]
            for number, each in enumerate(pages):
                _save_failure(each, request.node.nodeid + (f"-{number}" if number else ""))
        for context in _module_browser.contexts:
            context.close()
        _module_browser.contexts.clear()
        connections.close_all()


def _restore(migrated: str) -> None:
    """Put the migrations' rows back into the tables that are empty (the
    flush's post_migrate signal has filled some again: content types)."""
    empty: dict[type, bool] = {}
    with transaction.atomic():
        for row in serializers.deserialize("json", migrated):
            model = type(row.object)
            if empty.setdefault(model, not model._default_manager.exists()):
                row.save()


@pytest.fixture
def demo_site(
    module_chromium: ModuleChromium, live_server: Any, settings: Any, tmp_path: Path
) -> Any:
    """The demo's data (`make run`, doorkeep/demo.py), served live."""
    from doorkeep import demo

    settings.DATA_DIR = tmp_path  # where the demo writes its bank file
    assert demo.load_demo()
    return live_server
