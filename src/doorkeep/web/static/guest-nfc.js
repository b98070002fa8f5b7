// Presence verification with Web NFC (R27): press Verify, "Ready to tap"
// shows, the phone reads the panel's NFC tag, whose URL record holds the
// entry, the panel and the current code; the code goes into the form, which
// is posted. Browsers without Web NFC keep the typed-code form.
(function () {
  "use strict";
  const box = document.getElementById("verify");
  const button = document.getElementById("nfc-verify");
  if (!box || !button || !("NDEFReader" in window)) return;
  const ready = document.getElementById("nfc-ready");
  const message = document.getElementById("nfc-message");
  const form = document.getElementById("code-form");
  button.hidden = false;
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const reader = new window.NDEFReader();
      const stop = new AbortController();
      await reader.scan({ signal: stop.signal });
      ready.hidden = false;
      reader.addEventListener("reading", (event) => {
        for (const record of event.message.records) {
          if (record.recordType !== "url") continue;
          const url = new URL(new TextDecoder().decode(record.data));
          const tag = url.pathname.match(/\/guest\/tag\/(\d+)\/$/);
          if (tag && url.searchParams.get("picc_data") && url.searchParams.get("cmac")) {
            // An NTAG 424 DNA panel: its tap is verified by the platform.
            stop.abort();
            const query = new URLSearchParams({
              picc_data: url.searchParams.get("picc_data"),
              cmac: url.searchParams.get("cmac"),
            });
            window.location.assign("/guest/tag/" + tag[1] + "/?" + query.toString());
            return;
          }
          const code = url.searchParams.get("code");
          if (!code) continue;
          stop.abort();
          ready.hidden = true;
          if (!form || url.searchParams.get("entry") !== box.dataset.entry) {
            // Another entry's panel: verify there (the platform checks it is
            // shared). Only the values are taken from the tag, never its address.
            const query = new URLSearchParams({
              entry: url.searchParams.get("entry") || "",
              panel: url.searchParams.get("panel") || "",
              code: code,
            });
            window.location.assign("/guest/tap/?" + query.toString());
            return;
          }
          form.querySelector("[name=code]").value = code;
          form.querySelector("[name=panel]").value = url.searchParams.get("panel") || "";
          form.submit();
          return;
        }
        message.textContent = message.dataset.unknown || "This tag is not a Doorkeep panel.";
      });
    } catch (error) {
      button.disabled = false;
      ready.hidden = true;
      message.textContent = String(error && error.message ? error.message : error);
    }
  });
})();
