// Signing in: the dev login (POST /api/dev/token) or a pasted token, kept per tab.
//
// sessionStorage, not localStorage: each tab is its own device and may be signed
// in as a different user, which is handy for trying a chat with yourself.

const SESSION_KEY = "chatcore.session";
const NOTICE_KEY = "chatcore.notice";
const DEVICE_KEY = "chatcore.device";

/** The saved {user, token, dev} of this tab, or null. */
export function loadSession() {
  try {
    const session = JSON.parse(sessionStorage.getItem(SESSION_KEY));
    return session?.user && session?.token ? session : null;
  } catch {
    return null;
  }
}

export function saveSession(session) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

/** Forget the session and go back to the login screen, optionally with a notice. */
export function signOut(notice = "") {
  sessionStorage.removeItem(SESSION_KEY);
  if (notice) sessionStorage.setItem(NOTICE_KEY, notice);
  location.reload();
}

/** A notice left by signOut (shown once on the login screen). */
export function takeNotice() {
  const notice = sessionStorage.getItem(NOTICE_KEY) ?? "";
  sessionStorage.removeItem(NOTICE_KEY);
  return notice;
}

/** This tab's device id, stable across reloads of the tab. */
export function deviceId() {
  let device = sessionStorage.getItem(DEVICE_KEY);
  if (!device) {
    device = `web-${crypto.randomUUID().slice(0, 8)}`;
    sessionStorage.setItem(DEVICE_KEY, device);
  }
  return device;
}

/** The user a JWT names (its `sub`), read without verifying: the server verifies. */
export function userFromToken(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).sub ?? null;
  } catch {
    return null;
  }
}

/** Ask a dev-mode server for a token; throws an Error with a message for people. */
export async function devToken(user) {
  const response = await fetch(new URL("../api/dev/token", import.meta.url), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user }),
  });
  const data = await response.json().catch(() => ({}));
  if (response.status === 404) throw new Error("This server has no dev login; use a token.");
  if (!response.ok) throw new Error(data.error ?? `Sign-in failed (HTTP ${response.status}).`);
  return { user: data.user, token: data.token, dev: true };
}

/** A session from the login form: a pasted token wins over a name. */
export async function signIn({ name, token }) {
  if (token) {
    const user = userFromToken(token);
    if (!user) throw new Error("That does not look like a chatcore token.");
    return { user, token, dev: false };
  }
  if (!name) throw new Error("Enter your name.");
  return devToken(name);
}
