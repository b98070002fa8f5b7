// Doorkeep: turn on Web Push in this browser (the notification settings page).
(function () {
  "use strict";

  function keyBytes(base64url) {
    var padded = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = window.atob(padded);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var button = document.querySelector("[data-push-enable]");
    if (!button) { return; }
    var status = document.querySelector("[data-push-status]");
    function say(text) { if (status) { status.textContent = text; } }

    if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
      say(button.dataset.msgUnsupported);
      return;
    }
    button.hidden = false;

    button.addEventListener("click", function () {
      button.disabled = true;
      Notification.requestPermission().then(function (permission) {
        if (permission !== "granted") { throw new Error("denied"); }
        return navigator.serviceWorker.register(button.dataset.swUrl, { scope: "/" });
      }).then(function () {
        return navigator.serviceWorker.ready;
      }).then(function (registration) {
        return registration.pushManager.getSubscription().then(function (existing) {
          return existing || registration.pushManager.subscribe({
            userVisibleOnly: true,
            applicationServerKey: keyBytes(button.dataset.vapidKey)
          });
        });
      }).then(function (subscription) {
        var body = subscription.toJSON();
        body.user_agent = navigator.userAgent.slice(0, 300);
        return fetch(button.dataset.subscribeUrl, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": button.dataset.csrf },
          body: JSON.stringify(body)
        });
      }).then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        say(button.dataset.msgOn);
        window.setTimeout(function () { window.location.reload(); }, 800);
      }).catch(function (error) {
        button.disabled = false;
        say(error && error.message === "denied" ? button.dataset.msgDenied : button.dataset.msgFailed);
      });
    });
  });
})();
