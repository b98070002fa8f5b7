// Doorkeep: parts of a page that follow the platform without a reload (a
// charging station coming online, a session's energy growing).
//
// An element with data-live-url names a fragment of the page, rendered by
// the server; it is fetched every data-live-every milliseconds (2 s by
// default) while the page is visible. Each element of the fragment that has
// an id and data-live-part replaces the page's element with the same id when
// its content changed (a part that did not change keeps its focus and what
// the browser attached to it). Without this file the page shows what it
// showed when loaded, and every button still works.
(function () {
  "use strict";

  // Ask before a destructive action, on forms that arrived with a fragment
  // (doorkeep.js asks on the forms that were there when the page loaded).
  function askBeforeSubmit(root) {
    root.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
  }

  // A button that asks before it submits (a hard restart), wherever it is.
  document.addEventListener("click", function (event) {
    const button = event.target.closest ? event.target.closest("button[data-confirm-button]") : null;
    if (button && !window.confirm(button.getAttribute("data-confirm-button"))) {
      event.preventDefault();
    }
  });

  function follow(source) {
    const url = source.getAttribute("data-live-url");
    const every = Math.max(500, parseInt(source.getAttribute("data-live-every") || "2000", 10) || 2000);
    let busy = false;
    let timer = null;

    async function refresh() {
      if (busy || document.hidden) { return; }
      busy = true;
      try {
        const response = await fetch(url, {
          credentials: "same-origin",
          cache: "no-store",
          headers: { "Accept": "text/html" },
        });
        if (response.redirected || response.status === 403 || response.status === 404) {
          // Signed out, or no longer there for this person: stop asking.
          window.clearInterval(timer);
          return;
        }
        if (!response.ok) { return; } // the next round tries again
        const fragment = new DOMParser().parseFromString(await response.text(), "text/html");
        fragment.querySelectorAll("[data-live-part][id]").forEach(function (fresh) {
          const shown = document.getElementById(fresh.id);
          if (!shown || shown.innerHTML === fresh.innerHTML) { return; }
          const active = document.activeElement;
          if (active && shown.contains(active) && active.matches("input, select, textarea")) {
            return; // someone is typing there: the next round
          }
          const part = document.importNode(fresh, true);
          shown.replaceWith(part);
          askBeforeSubmit(part);
        });
        source.setAttribute("data-live-at", String(Date.now()));
      } catch (error) {
        // The network or the server hiccupped: the next round tries again.
      } finally {
        busy = false;
      }
    }

    timer = window.setInterval(refresh, every);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) { refresh(); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live-url]").forEach(follow);
  });
})();
