/* Kaskad web push: ask a visitor for notifications and register the browser with Kaskad.
 *
 *   <script src="https://kaskad.example.com/webpush/kaskad-push.js"></script>
 *   <script>
 *     // anonymous visitor:
 *     KaskadPush.subscribe();
 *     // logged-in customer (the shop's backend signs the id with the webpush subscribe key):
 *     KaskadPush.subscribe({ externalId: "cust-42", signature: "<hex HMAC-SHA256>" });
 *   </script>
 *
 * Options: serviceWorker (default "/kaskad-sw.js", the one-line file importing
 * Kaskad's sw.js), externalId + signature. Resolves to Kaskad's answer
 * ({contact, anonymous_token?}) or null when the visitor declines.
 */
(function () {
  var script = document.currentScript;
  var base = (script && script.getAttribute("data-kaskad")) || (script ? new URL(script.src).origin : "");
  var TOKEN = "kaskad.anonymous_token";

  function keyBytes(b64) {
    var padded = (b64 + "===".slice((b64.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(padded), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  async function subscribe(options) {
    options = options || {};
    if (!("serviceWorker" in navigator) || !("PushManager" in window)) return null;
    var registration = await navigator.serviceWorker.register(options.serviceWorker || "/kaskad-sw.js");
    await navigator.serviceWorker.ready;
    if ((await Notification.requestPermission()) !== "granted") return null;
    var key = (await (await fetch(base + "/webpush/key")).json()).applicationServerKey;
    var subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key) });
    var body = { subscription: subscription.toJSON(), user_agent: navigator.userAgent };
    if (options.externalId) { body.external_id = options.externalId; body.signature = options.signature; }
    var anonymous = window.localStorage.getItem(TOKEN);
    if (anonymous) body.anonymous_token = anonymous;
    // text/plain keeps this a CORS "simple request" (no preflight); the body is JSON.
    var response = await fetch(base + "/webpush/subscribe", { method: "POST", headers: { "Content-Type": "text/plain" }, body: JSON.stringify(body) });
    if (!response.ok) throw new Error("Kaskad refused the subscription: HTTP " + response.status);
    var answer = await response.json();
    if (answer.anonymous_token) window.localStorage.setItem(TOKEN, answer.anonymous_token);
    else if (options.externalId) window.localStorage.removeItem(TOKEN);
    return answer;
  }

  window.KaskadPush = { subscribe: subscribe };
})();
