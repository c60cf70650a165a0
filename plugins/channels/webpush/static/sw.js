/* Kaskad web push service worker.
 *
 * A service worker must be served from the shop's own origin, so the shop puts
 * a one-line file on its site (e.g. /kaskad-sw.js):
 *
 *     importScripts("https://kaskad.example.com/webpush/sw.js");
 *
 * It shows each push as a notification, reports delivery to Kaskad, and opens
 * the message's tracked link on click.
 */
self.addEventListener("push", function (event) {
  var data = {};
  if (event.data) {
    try { data = event.data.json(); } catch (e) { data = { title: event.data.text() }; }
  }
  var shown = self.registration.showNotification(data.title || "", {
    body: data.body || "",
    icon: data.icon,
    image: data.image,
    tag: data.tag,
    data: { url: data.url }
  });
  var receipt = data.receipt
    ? fetch(data.receipt, { method: "POST", mode: "no-cors", keepalive: true }).catch(function () {})
    : Promise.resolve();
  event.waitUntil(Promise.all([shown, receipt]));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = event.notification.data && event.notification.data.url;
  if (url) event.waitUntil(self.clients.openWindow(url));
});
