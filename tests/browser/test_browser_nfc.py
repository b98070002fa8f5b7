"""The Web NFC script takes only the values from a tag, never its address:
a rogue sticker over a panel cannot send the guest to another site."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent / "guests"))

from browser_helpers import sign_in
from guest_helpers import PASSWORD, make_guest_world

from doorkeep.guests import services as guests

# A tag (a sticker over the real panel) whose URL has a path starting with //.
FAKE_NDEF = """
window.NDEFReader = class extends EventTarget {
  async scan() {
    setTimeout(() => {
      const e = new Event("reading");
      e.message = { records: [{ recordType: "url", data: new TextEncoder().encode(
        "https://panel.invalid//evil.example/phish?entry=999&panel=1&code=123456") }] };
      this.dispatchEvent(e);
    }, 50);
  }
};
"""


def test_a_tag_url_cannot_send_the_guest_to_another_site(
    browser_page: Any, transactional_db: None, world: Any
) -> None:
    gw = make_guest_world(world)
    invitation = gw.invite()
    guests.accept(gw.gina, invitation.pk)
    page = browser_page
    offsite: list[str] = []
    page.context.route(
        "**://evil.example/**",
        lambda route: (offsite.append(route.request.url), route.fulfill(body="phish"))[1],
    )
    page.add_init_script(FAKE_NDEF)
    sign_in(page, gw.gina.email, PASSWORD)
    page.goto(f"/guest/entries/{world.entry.pk}/verify/")
    page.locator("#nfc-verify").click()
    page.wait_for_url("**/guest/tap/?**")  # the tag's values, on our own page
    assert offsite == [], f"the page navigated off the site: {offsite}"
    assert "evil.example" not in page.url
    assert "entry=999" in page.url and "code=123456" in page.url
