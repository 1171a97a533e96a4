// Web Push for the page: the "Enable notifications" button asks for permission,
// subscribes this browser with the server's VAPID public key (from /api/push) through
// the service worker sw.js, and registers the subscription over the socket
// (`push.register`). The button stays hidden when the server offers no Web Push or
// the browser has no Push API.

const SVG_NS = "http://www.w3.org/2000/svg";
const BELL = "M6 16V11a6 6 0 0 1 12 0v5l1.5 2h-15z M10 20.5a2 2 0 0 0 4 0";

/** The `push.register` frame of a `PushSubscription` (or anything with its `toJSON()`). */
export function subscriptionFrame(subscription) {
  const { endpoint, keys } = subscription.toJSON();
  if (!endpoint || !keys?.p256dh || !keys?.auth) throw new Error("not a push subscription");
  return { type: "push.register", kind: "webpush", token: endpoint, keys: { p256dh: keys.p256dh, auth: keys.auth } };
}

/** A base64url key as the bytes `pushManager.subscribe` takes for `applicationServerKey`. */
export function keyBytes(base64url) {
  const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

/** The server's VAPID public key, or null when it offers no Web Push. */
export async function vapidPublicKey() {
  try {
    const response = await fetch(new URL("../api/push", import.meta.url));
    return response.ok ? (await response.json()).vapid_public_key : null;
  } catch {
    return null;
  }
}

export function pushSupported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

/** This browser's subscription for `key`, made (after the worker is active) if needed. */
async function subscribe(key) {
  const registration = await navigator.serviceWorker.register(new URL("./sw.js", import.meta.url));
  const worker = registration.installing ?? registration.waiting;
  if (worker && !registration.active) {
    await new Promise((resolve) => {
      worker.addEventListener("statechange", () => worker.state === "activated" && resolve());
    });
  }
  const existing = await registration.pushManager.getSubscription();
  if (existing) return existing;
  return registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key) });
}

/** Show the button if Web Push is possible, and make it subscribe and register. */
export async function setUpPush(client, button) {
  const key = await vapidPublicKey();
  // The page's hook for tests and apps that subscribe by other means.
  window.chatcorePush = { key, register: (subscription) => client.conn.request(subscriptionFrame(subscription)) };
  if (!key || !pushSupported()) return;
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "icon icon-bell");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", BELL);
  svg.append(path);
  button.replaceChildren(svg);
  button.hidden = false;
  button.addEventListener("click", async () => {
    button.dataset.state = "working";
    try {
      if ((await Notification.requestPermission()) !== "granted") {
        throw new Error("notifications are blocked for this site");
      }
      await client.conn.request(subscriptionFrame(await subscribe(key)));
      button.dataset.state = "on";
      button.title = "Notifications are on";
    } catch (error) {
      button.dataset.state = "failed";
      button.title = `Notifications unavailable: ${error.message}`;
    }
  });
}
