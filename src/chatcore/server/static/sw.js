// The service worker of Web Push: shows each push as a notification (one per chat:
// a newer push replaces the chat's last one) and opens the page when it is clicked.
// The payload is chatcore.push.render.webpush_payload: {title, body, data: {chat_id, ...}}.

self.addEventListener("push", (event) => {
  let payload = {};
  try {
    payload = event.data ? event.data.json() : {};
  } catch {
    payload = {};
  }
  const data = payload.data ?? {};
  event.waitUntil(
    self.registration.showNotification(payload.title ?? "New messages", {
      body: payload.body ?? undefined,
      tag: data.chat_id ? `chat:${data.chat_id}` : undefined,
      renotify: Boolean(data.chat_id),
      data,
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(self.clients.openWindow(new URL("../", self.location.href)));
});
