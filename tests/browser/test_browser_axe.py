"""WCAG 2.1 AA with axe-core (issue 15, item 10): axe runs in the main pages of
every role, on the demo's data, at desktop (1280x800) and phone (375x667)
sizes; any violation of the wcag2a, wcag2aa, wcag21a and wcag21aa rules fails
the test, listed page by page. One Chromium serves the whole module
(``module_chromium``).

axe-core comes from npm: tests/browser/axe/package.json, installed with
`npm ci --prefix tests/browser/axe` (.ci/run does it). Without it these
tests skip and say so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from doorkeep import demo
from doorkeep.guests.models import Invitation
from doorkeep.keys.models import Key
from doorkeep.locks.models import Lock
from doorkeep.properties.models import Property

AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 375, "height": 667}}
SANNE = "sanne.de.vries@example.com"  # a resident of the demo with a portal login

# The violations of one page, each with the elements it was found on.
_RUN_AXE = """async (tags) => {
  const results = await axe.run(document, {
    runOnly: {type: "tag", values: tags}, resultTypes: ["violations"],
  });
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => n.target.join(" ") + ": " + (n.failureSummary || "")),
  }));
}"""


@pytest.fixture(scope="module", autouse=True)
def _axe_installed() -> None:
    if not AXE.exists():
        pytest.skip(
            f"axe-core is not installed at {AXE}: "
            "`npm ci --prefix tests/browser/axe` (.ci/run does it) to run the axe checks"
        )


class Audit:
    """axe's findings, page by page."""

    def __init__(self, chromium: Any, url: str) -> None:
        self.chromium = chromium
        self.url = url
        self.found: list[str] = []

    def page(self, size: str, email: str | None = None) -> Any:
        """A fresh page at ``size``; signed in as ``email`` when given."""
        return self.chromium.new_page(self.url, viewport=SIZES[size], email=email)

    def check(self, page: Any, label: str) -> None:
        """Run axe in the page as it is now; remember what it finds."""
        # Evaluated, not added as a <script>: the pages' Content-Security-Policy
        # refuses inline scripts (core/security.py), as it should.
        page.evaluate(AXE.read_text(encoding="utf-8"))
        for violation in page.evaluate(_RUN_AXE, WCAG_TAGS):
            nodes = "\n      ".join(violation["nodes"][:5])
            self.found.append(
                f"{label}: {violation['id']} [{violation['impact']}] {violation['help']}"
                f"\n      {nodes}"
            )

    def visit(self, page: Any, paths: list[str], size: str) -> None:
        for path in paths:
            response = page.goto(path)
            assert response is not None and response.ok, f"{path} answered {response}"
            self.check(page, f"{size} {path}")

    def assert_clean(self) -> None:
        assert not self.found, f"{len(self.found)} axe violation(s):\n" + "\n".join(self.found)


@pytest.fixture
def audit(module_chromium: Any, live_server: Any) -> Audit:
    return Audit(module_chromium, live_server.url)


def owner_pages() -> list[str]:
    main = Lock.objects.get(serial="DK-2025-0001")
    key = Key.objects.filter(lock=main, revoked_at__isnull=True, parent__isnull=True).first()
    assert key is not None
    prop = Property.objects.get(name="Residentie Keizersgracht")
    return [
        "/",
        f"/properties/{prop.pk}/",
        f"/locks/{main.pk}/",
        f"/locks/{main.pk}/keys/{key.pk}/edit/",
        f"/locks/{main.pk}/events/",
        f"/locks/{main.pk}/licence/",
        f"/properties/{prop.pk}/guests/",
        "/notifications/",
        "/settings/upgrades/",
    ]


def test_the_lock_owner_s_pages_have_no_wcag_violation_on_desktop_or_phone(
    demo_site: Any, audit: Audit
) -> None:
    paths = owner_pages()
    for size in SIZES:
        audit.visit(audit.page(size, demo.OWNER), paths, size)
    audit.assert_clean()


def test_the_pages_of_residents_guests_and_the_operator_have_no_wcag_violation_on_desktop_or_phone(
    demo_site: Any, audit: Audit
) -> None:
    invitation = Invitation.objects.filter(inviter__email=demo.RESIDENT).first()
    assert invitation is not None
    prop = Property.objects.get(name="Residentie Keizersgracht")
    people = {
        demo.RESIDENT: ["/doors/", "/guests/", f"/guests/invitations/{invitation.pk}/"],
        SANNE: ["/portal/", "/portal/consumption/", "/portal/invoices/"],
        demo.GUEST: ["/guest/", f"/guest/{prop.pk}/key/", "/notifications/"],
        demo.OPERATOR: ["/operator/badges/", "/operator/installations/"],
    }
    for size in SIZES:
        for email, paths in people.items():
            audit.visit(audit.page(size, email), paths, size)
    audit.assert_clean()


def test_the_sign_in_and_sign_up_pages_have_no_wcag_violation_on_desktop_or_phone(
    audit: Audit,
) -> None:
    paths = ["/accounts/login/", "/accounts/signup/", "/accounts/password/reset/", "/portal/join/"]
    for size in SIZES:
        page = audit.page(size)
        audit.visit(page, paths, size)
        # A failed sign-in: the page with its error.
        page.goto("/accounts/login/")
        page.locator("input[name=login]").fill(demo.OWNER)
        page.locator("input[name=password]").fill("not the password")
        page.locator("main").get_by_role("button", name="Sign In").click()
        page.wait_for_load_state()
        audit.check(page, f"{size} failed sign-in")
    audit.assert_clean()
