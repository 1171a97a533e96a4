// Small DOM helpers: element builder, icons, keyed list updates, formatting.

const SVG_NS = "http://www.w3.org/2000/svg";

/** Build an element: h("button", {class: "x", onclick: f, "aria-label": "Send"}, child, ...). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "style") el.style.cssText = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  el.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

const ICONS = {
  check: ["0 0 16 11", "M1.5 5.8 4.8 9 11.5 1.8"],
  checks: ["0 0 18 11", "M1 5.8 4.3 9 11 1.8 M6.6 7.5 8.2 9 14.9 1.8"],
  clock: ["0 0 16 16", "M8 2.2a5.8 5.8 0 1 0 0 11.6A5.8 5.8 0 0 0 8 2.2z M8 4.8V8l2.2 1.4"],
  alert: ["0 0 16 16", "M8 2.2a5.8 5.8 0 1 0 0 11.6A5.8 5.8 0 0 0 8 2.2z M8 5v3.6 M8 10.8v.2"],
  send: ["0 0 24 24", "M3.4 20.4 21 12 3.4 3.6 3.4 10l12.6 2-12.6 2z"],
  chat: ["0 0 24 24", "M4 5h16v11H8l-4 4z M12 8v5 M9.5 10.5h5"],
  group: [
    "0 0 24 24",
    "M9 11a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7z M2.5 20c0-3.6 2.9-6 6.5-6s6.5 2.4 6.5 6 M16 4.3a3.5 3.5 0 0 1 0 6.4 M18 14.4c2.1.7 3.5 2.8 3.5 5.6",
  ],
  logout: ["0 0 24 24", "M15 4h4v16h-4 M10 8l-4 4 4 4 M6 12h10"],
  back: ["0 0 24 24", "M19 12H5 M11 6l-6 6 6 6"],
  down: ["0 0 24 24", "M6 9l6 6 6-6"],
  search: ["0 0 24 24", "M10.5 17a6.5 6.5 0 1 0 0-13 6.5 6.5 0 0 0 0 13z M15.5 15.5 20 20"],
  info: ["0 0 24 24", "M12 3.5a8.5 8.5 0 1 0 0 17 8.5 8.5 0 0 0 0-17z M12 11v5.5 M12 7.6v.2"],
  close: ["0 0 24 24", "M6 6l12 12 M18 6 6 18"],
  lock: ["0 0 24 24", "M6 11h12v9H6z M8.5 11V8a3.5 3.5 0 0 1 7 0v3"],
  attach: [
    "0 0 24 24",
    "M16.5 7v10a4.5 4.5 0 0 1-9 0V6a3 3 0 0 1 6 0v10.5a1.5 1.5 0 0 1-3 0V7",
  ],
};

/** An inline SVG icon; decorative unless a label is given. */
export function icon(name, label = null) {
  const [viewBox, d] = ICONS[name];
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", viewBox);
  svg.setAttribute("class", `icon icon-${name}`);
  if (label) {
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
  } else {
    svg.setAttribute("aria-hidden", "true");
  }
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", d);
  svg.append(path);
  return svg;
}

/**
 * Make `parent`'s children match `items` ({key, sig, build}) with few DOM moves:
 * a child whose key and signature are unchanged is kept as it is (focus and text
 * selection survive), others are built anew.
 */
export function reconcile(parent, items) {
  const existing = new Map();
  for (const el of parent.children) existing.set(el.dataset.key, el);
  const nodes = items.map((item) => {
    const old = existing.get(item.key);
    if (old && old.dataset.sig === item.sig) return old;
    const el = item.build();
    el.dataset.key = item.key;
    el.dataset.sig = item.sig;
    return el;
  });
  const kept = new Set(nodes);
  const focused = [...parent.children].find((el) => el.contains(document.activeElement));
  let ref = parent.firstElementChild;
  for (const node of nodes) {
    while (ref && !kept.has(ref)) ref = ref.nextElementSibling;
    if (node === ref) ref = ref.nextElementSibling;
    else parent.insertBefore(node, ref);
  }
  for (const el of [...parent.children]) if (!kept.has(el)) el.remove();
  if (focused && !focused.isConnected) {
    // A rebuilt item keeps the keyboard focus its old self had.
    const twin = nodes.find((el) => el.dataset.key === focused.dataset.key);
    (twin?.querySelector("button, a, [tabindex]") ?? twin)?.focus();
  }
}

// --- formatting ----------------------------------------------------------------

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const weekdayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long" });
const dateFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });
const fullDateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });

const DAY_MS = 86_400_000;

function daysAgo(ts, now) {
  const start = (t) => new Date(t).setHours(0, 0, 0, 0);
  return Math.round((start(now) - start(ts)) / DAY_MS);
}

export const timeOfDay = (ts) => timeFormat.format(ts);

/** "Today", "Yesterday", "Monday", or a date: the separator between days. */
export function dayLabel(ts, now = Date.now()) {
  const days = daysAgo(ts, now);
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  if (days > 1 && days < 7) return weekdayFormat.format(ts);
  return fullDateFormat.format(ts);
}

/** The time shown in the chat list: a time today, else a day. */
export function listTime(ts, now = Date.now()) {
  if (!ts) return "";
  const days = daysAgo(ts, now);
  if (days === 0) return timeOfDay(ts);
  if (days === 1) return "Yesterday";
  if (days > 1 && days < 7) return weekdayFormat.format(ts);
  return dateFormat.format(ts);
}

export function lastSeen(ts, now = Date.now()) {
  if (!ts) return "offline";
  const days = daysAgo(ts, now);
  if (days === 0) return `last seen today at ${timeOfDay(ts)}`;
  if (days === 1) return `last seen yesterday at ${timeOfDay(ts)}`;
  return `last seen ${dateFormat.format(ts)}`;
}

export function fileSize(bytes) {
  const units = ["B", "kB", "MB", "GB"];
  let i = 0;
  while (bytes >= 1000 && i < units.length - 1) {
    bytes /= 1000;
    i++;
  }
  return `${i ? bytes.toFixed(1) : bytes} ${units[i]}`;
}

/** A stable hue for a name: avatars and sender names get their own colour. */
export function hue(name) {
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return hash % 360;
}

export function initials(name) {
  const words = name.trim().split(/[\s._-]+/).filter(Boolean);
  const letters = words.length > 1 ? [words[0], words[1]] : [words[0] ?? "?"];
  return letters.map((w) => [...w][0]).join("").toUpperCase();
}

/** Text with http(s) links made clickable, built from text nodes (no HTML parsing). */
export function linkify(text) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(/https?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)]/g)) {
    parts.push(text.slice(last, match.index));
    parts.push(h("a", { href: match[0], target: "_blank", rel: "noopener noreferrer" }, match[0]));
    last = match.index + match[0].length;
  }
  parts.push(text.slice(last));
  return parts.filter((p) => p !== "");
}
