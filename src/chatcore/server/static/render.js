// Rendering: the store in, DOM out. Nothing here talks to the network.

import {
  dayLabel,
  fileSize,
  h,
  hue,
  icon,
  initials,
  lastSeen,
  linkify,
  listTime,
  reconcile,
  timeOfDay,
} from "./dom.js";

const RUN_GAP_MS = 5 * 60_000; // consecutive messages closer than this form one run
const STICKY_PX = 48; // this close to the bottom, the pane follows new messages

const TICK_LABELS = {
  pending: "Sending",
  failed: "Not sent",
  sent: "Sent",
  delivered: "Delivered",
  read: "Read",
};

export function avatar(name, { online = false, group = false, size = "" } = {}) {
  return h(
    "span",
    { class: `avatar ${size}`, style: `--hue: ${hue(name)}`, "aria-hidden": "true" },
    group ? icon("group") : initials(name),
    online ? h("span", { class: "presence-dot" }) : null,
  );
}

export function tickIcon({ status, readBy, of }) {
  const label =
    of > 1 && status !== "read" && readBy ? `Read by ${readBy} of ${of}` : TICK_LABELS[status];
  const name = { pending: "clock", failed: "alert", sent: "check" }[status] ?? "checks";
  return h("span", { class: `tick tick-${status}`, "data-status": status, title: label }, [
    icon(name, label),
  ]);
}

function isOnline(store, user) {
  return store.presence.get(user)?.status === "online";
}

/** What the chat list shows under a chat's name. */
function preview(store, chat) {
  const typing = store.typingIn(chat);
  if (typing.length) {
    const text = chat.kind === "direct" ? "typing…" : `${typing[0]} is typing…`;
    return [h("span", { class: "preview-typing" }, text)];
  }
  const item = store.lastItem(chat);
  if (!item) return [h("span", { class: "preview-empty" }, "No messages yet")];
  const mine = item.sender === store.me;
  let who = "";
  if (chat.kind === "group") who = mine ? "You: " : `${item.sender}: `;
  const text = h("span", { class: "preview-text" }, who, summary(item));
  return [mine ? tickIcon(store.tick(chat, item)) : null, text].filter(Boolean);
}

/** A one-line text for a message of any kind. */
function summary(message) {
  if (message.deleted) return "🚫 This message was deleted";
  if (message.encrypted) {
    return message.text != null ? `🔒 ${message.text.replace(/\s+/g, " ")}` : "🔒 Encrypted message";
  }
  switch (message.kind) {
    case "image":
      return `📷 ${message.body || "Photo"}`;
    case "video":
      return `🎥 ${message.body || "Video"}`;
    case "file":
      return `📄 ${message.attachment?.name || message.body || "File"}`;
    default:
      return message.body.replace(/\s+/g, " ");
  }
}

// --- sidebar ---------------------------------------------------------------------

export function renderChatList(store, list, { filter = "", onOpen }) {
  const needle = filter.trim().toLowerCase();
  const chats = store
    .sortedChats()
    .filter((chat) => !needle || store.title(chat).toLowerCase().includes(needle));
  const items = chats.map((chat) => {
    const title = store.title(chat);
    const peer = store.peer(chat);
    const online = peer !== null && isOnline(store, peer);
    const unread = store.unread(chat);
    const last = store.lastItem(chat);
    const active = chat.id === store.activeId;
    const previewParts = preview(store, chat);
    const previewText = previewParts.map((p) => p.textContent).join("");
    const tick = last?.sender === store.me ? store.tick(chat, last).status : "";
    const sig = [title, online, unread, last?.ts, active, previewText, tick].join("|");
    const build = () =>
      h(
        "li",
        {},
        h(
          "button",
          {
            class: `chat-item${unread ? " has-unread" : ""}`,
            type: "button",
            "data-chat": chat.id,
            "aria-current": active ? "true" : null,
            "aria-label": [title, unread && `${unread} unread`, online && "online"]
              .filter(Boolean)
              .join(", "),
            onclick: () => onOpen(chat.id),
          },
          avatar(title, { online, group: chat.kind === "group" }),
          h(
            "span",
            { class: "chat-main" },
            h(
              "span",
              { class: "chat-line" },
              h("span", { class: "chat-title" }, title),
              h("time", { class: "chat-time" }, listTime(last?.ts)),
            ),
            h(
              "span",
              { class: "chat-line" },
              h("span", { class: "chat-preview" }, previewParts),
              unread ? h("span", { class: "badge", "aria-hidden": "true" }, String(unread)) : null,
            ),
          ),
        ),
      );
    return { key: chat.id, sig, build };
  });
  reconcile(list, items);
  const wrap = list.parentElement;
  wrap.classList.toggle("is-empty", chats.length === 0);
  wrap.querySelector(".chat-list-empty").textContent = needle
    ? "No chats match your search."
    : "No chats yet. Start one with the buttons above.";
}

export function renderBanner(store, banner) {
  const text = { reconnecting: "Reconnecting…", connecting: "Connecting…" }[store.status] ?? "";
  banner.textContent = text;
  banner.hidden = !text;
}

// --- conversation ------------------------------------------------------------------

export function renderHeader(store, header) {
  const chat = store.active;
  if (!chat) return;
  const title = store.title(chat);
  const peer = store.peer(chat);
  const typing = store.typingIn(chat);
  let status;
  if (typing.length && chat.kind === "direct") {
    status = h("span", { class: "typing-text" }, "typing…");
  } else if (peer) {
    const presence = store.presence.get(peer);
    status = presence?.status === "online" ? "online" : lastSeen(presence?.last_seen);
  } else {
    const admin = (name, user) => (chat.admins.includes(user) ? `${name} (admin)` : name);
    const names = [...chat.others(store.me)].sort().map((u) => admin(u, u));
    if (chat.members.includes(store.me)) names.push(admin("You", store.me));
    status = `${chat.members.length} members · ${names.join(", ")}`;
  }
  header.querySelector("#group-info").hidden = chat.kind !== "group";
  header.querySelector(".conv-avatar").replaceChildren(
    avatar(title, { online: peer !== null && isOnline(store, peer), group: !peer }),
  );
  header.querySelector(".conv-title").textContent = title;
  header.querySelector(".conv-status").replaceChildren(status);
}

// --- group info panel ----------------------------------------------------------------

const ROLE_BADGES = { creator: "creator", admin: "admin" };

/**
 * The group info panel of the active group: its members with their role badges, and
 * what the user may do. Everyone may leave; only an admin sees the add form, the
 * per-member Make admin / Dismiss as admin / Remove buttons (never on the creator,
 * whom no one else may remove or demote) and can flip `history_visible`.
 */
export function renderGroupPanel(store, panel) {
  const chat = store.active;
  if (!chat || chat.kind !== "group") return;
  const me = store.me;
  const admin = chat.isAdmin(me);
  const title = store.title(chat);
  panel
    .querySelector(".panel-avatar")
    .replaceChildren(avatar(title, { group: true, size: "large" }));
  panel.querySelector(".panel-title").textContent = title;
  const count = chat.members.length;
  const plural = count === 1 ? "" : "s";
  panel.querySelector(".panel-count").textContent = `Group · ${count} member${plural}`;

  const toggle = panel.querySelector("#history-visible");
  toggle.checked = chat.historyVisible;
  toggle.disabled = !admin;
  panel.querySelector("#history-hint").textContent = admin
    ? "Applies to members added from now on."
    : "Only admins can change this.";
  panel.querySelector("#add-member").hidden = !admin;

  // The user first, then the admins, then the others, each in joining order.
  const rank = (u) => (u === me ? 0 : chat.admins.includes(u) ? 1 : 2);
  const members = chat.members
    .map((u, i) => [u, i])
    .sort(([a, i], [b, j]) => rank(a) - rank(b) || i - j);
  const items = members.map(([user]) => {
    const role = chat.role(user);
    const mine = user === me;
    // Only an admin changes others; no one but the creator touches the creator.
    const canChange = admin && !mine && role !== "creator";
    const badge = ROLE_BADGES[role];
    const sig = [role, canChange, isOnline(store, user)].join("|");
    const action = (kind, label, text, extra = "") =>
      h(
        "button",
        {
          type: "button",
          class: `member-action${extra}`,
          "data-member-action": kind,
          "data-user": user,
          "aria-label": label,
          title: label,
        },
        text,
      );
    const build = () =>
      h(
        "li",
        { class: "member", "data-member": user, "data-role": role },
        avatar(user, { online: !mine && isOnline(store, user) }),
        h(
          "span",
          { class: "member-main" },
          h(
            "span",
            { class: "member-line" },
            h("span", { class: "member-name" }, mine ? "You" : user),
            badge ? h("span", { class: `role-badge role-${role}` }, badge) : null,
          ),
          canChange
            ? h(
                "span",
                { class: "member-actions" },
                role === "admin"
                  ? action("demote", `Dismiss ${user} as admin`, "Dismiss as admin")
                  : action("promote", `Make ${user} admin`, "Make admin"),
                action("remove", `Remove ${user}`, "Remove", " danger"),
              )
            : null,
        ),
      );
    return { key: user, sig, build };
  });
  reconcile(panel.querySelector("#member-list"), items);
}

export function renderTyping(store, strip) {
  const chat = store.active;
  const typing = chat ? store.typingIn(chat) : [];
  let text = "";
  if (typing.length === 1) text = `${typing[0]} is typing`;
  else if (typing.length === 2) text = `${typing[0]} and ${typing[1]} are typing`;
  else if (typing.length > 2) text = `${typing.length} people are typing`;
  strip.replaceChildren(
    text ? h("span", { class: "typing-dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")) : "",
    text ? `${text}…` : "",
  );
}

function messageBody(message) {
  if (message.deleted) {
    return h("span", { class: "body body-note deleted" }, "🚫 This message was deleted");
  }
  if (message.encrypted) {
    if (message.text == null) {
      return h("span", { class: "body body-note" }, icon("lock"), " Encrypted message");
    }
    // Opened on this device: the text, with a lock that says it was end-to-end encrypted.
    return [
      h("span", { class: "e2ee", title: "End-to-end encrypted", "aria-label": "End-to-end encrypted" }, icon("lock")),
      h("span", { class: "body" }, linkify(message.text)),
    ];
  }
  return [media(message), message.body ? h("span", { class: "body" }, linkify(message.body)) : null];
}

/** Only links the server made (a path on this server, or http(s)) are followed. */
function safe(url) {
  return typeof url === "string" && /^(https?:\/\/|\/)/.test(url) ? url : null;
}

/**
 * An attachment: an image inline (its thumbnail; click for the full image), a video
 * player, or a file to download. Links expire; the page renews them on error/click.
 */
function media(message) {
  const a = message.attachment;
  if (!a) return null;
  const url = safe(a.url);
  const data = { "data-blob": a.blob ?? null, "data-seq": message.seq ?? null };
  if (!url) {
    const failed = message.state === "failed";
    const note = a.uploading ? (failed ? "Upload failed" : "Uploading…") : "";
    return h("span", { class: "file media-pending" }, "📎 ", h("span", {}, a.name || "file"), h("small", {}, note || fileSize(a.size)));
  }
  if (message.kind === "image") {
    const src = safe(a.thumbnail_url) ?? url;
    return h(
      "a",
      { class: "media-link", href: url, target: "_blank", rel: "noopener", ...data },
      h("img", { class: "media", src, alt: a.name || "image", loading: "lazy", ...data }),
    );
  }
  if (message.kind === "video") {
    return h("video", { class: "media", src: url, controls: true, preload: "metadata", ...data });
  }
  return h(
    "a",
    { class: "file", href: url, download: a.name || true, rel: "noopener", ...data },
    "📄 ",
    h("span", {}, a.name || "file"),
    h("small", {}, fileSize(a.size)),
  );
}

/** Reaction chips under a message; a click on one toggles the user's own. */
function reactionChips(store, item) {
  const reactions = item.reactions ?? [];
  if (!reactions.length) return null;
  return h(
    "div",
    { class: "reactions" },
    ...reactions.map((r) =>
      h(
        "button",
        {
          type: "button",
          class: `reaction${r.users.includes(store.me) ? " mine" : ""}`,
          "data-action": r.users.includes(store.me) ? "unreact" : "react",
          "data-emoji": r.emoji,
          title: r.users.join(", "),
        },
        `${r.emoji} ${r.users.length}`,
      ),
    ),
  );
}

/** What the user may do to a sequenced message: react; edit and delete their own
 *  (a group's admin deletes any). */
function messageActions(store, chat, item, mine) {
  if (item.seq === undefined || item.deleted) return null;
  const admin = chat.kind === "group" && chat.admins.includes(store.me);
  const button = (action, label, text) =>
    h("button", { type: "button", class: "action", "data-action": action, "aria-label": label }, text);
  return h(
    "div",
    { class: "actions" },
    button("react", "React 👍", "👍"),
    mine && (!item.encrypted || item.text != null) && item.kind === "text"
      ? button("edit", "Edit", "✏️")
      : null,
    mine || admin ? button("delete", "Delete", "🗑") : null,
  );
}

function messageRow(store, chat, item, { first, showName }) {
  const mine = item.sender === store.me;
  const tick = mine ? store.tick(chat, item) : null;
  const key = `m:${item.sender}:${item.client_msg_id}`;
  const state = [item.body, item.deleted, item.edited_ts, JSON.stringify(item.reactions ?? [])];
  const links = [item.attachment?.url, item.attachment?.uploading, item.attachment?.blob];
  const sig = [item.seq ?? "", tick?.status, tick?.readBy, first, showName, item.text != null]
    .concat(links, state)
    .join("|");
  const edited = Boolean(item.edited_ts) && !item.deleted;
  const build = () =>
    h(
      "div",
      {
        class: `row ${mine ? "mine" : "theirs"}${first ? " first" : ""}`,
        "data-seq": item.seq ?? null,
        "data-retry": tick?.status === "failed" ? item.client_msg_id : null,
        title: tick?.status === "failed" ? `Not sent (${item.error}). Click to retry.` : null,
      },
      h(
        "div",
        { class: "bubble" },
        showName
          ? h("div", { class: "sender", style: `--hue: ${hue(item.sender)}` }, item.sender)
          : h("span", { class: "visually-hidden" }, mine ? "You: " : `${item.sender}: `),
        messageBody(item),
        reactionChips(store, item),
        // An invisible copy of the time keeps the last line of text clear of it.
        h(
          "span",
          { class: `spacer${mine ? " spacer-mine" : ""}`, "aria-hidden": "true" },
          `${edited ? "edited " : ""}${timeOfDay(item.ts)}`,
        ),
        h(
          "span",
          { class: "meta" },
          edited ? h("span", { class: "edited" }, "edited") : null,
          h("time", { datetime: new Date(item.ts).toISOString() }, timeOfDay(item.ts)),
          tick ? tickIcon(tick) : null,
        ),
      ),
      messageActions(store, chat, item, mine),
    );
  return { key, sig, build };
}

/**
 * The message pane of the active chat. Keeps the reader where they were: at the
 * bottom it follows new messages; after older ones are prepended the same message
 * stays in view.
 */
export function renderMessages(store, pane, { unreadAfter = null, forceBottom = false } = {}) {
  const chat = store.active;
  const list = pane.querySelector(".message-list");
  if (!chat) {
    list.replaceChildren();
    return;
  }
  const switched = pane.dataset.chat !== chat.id;
  const atBottom = pane.scrollHeight - pane.scrollTop - pane.clientHeight < STICKY_PX;
  const anchor = switched || atBottom ? null : firstVisibleRow(pane, list);

  const items = [];
  if (chat.busy.older) {
    const build = () => h("div", { class: "edge" }, "Loading…");
    items.push({ key: "edge", sig: "loading", build });
  } else if (chat.loaded && !chat.hasMore) {
    const text = "This is the start of the conversation.";
    items.push({ key: "edge", sig: "start", build: () => h("div", { class: "edge" }, text) });
  }
  const all = [...chat.shown(), ...store.pendingIn(chat.id)];
  let prev = null;
  let unreadShown = false;
  for (const item of all) {
    const day = dayLabel(item.ts);
    if (!prev || dayLabel(prev.ts) !== day) {
      items.push({
        key: `day:${new Date(item.ts).toDateString()}`,
        sig: day,
        build: () => h("div", { class: "day", role: "separator" }, h("span", {}, day)),
      });
      prev = null;
    }
    if (
      unreadAfter !== null &&
      !unreadShown &&
      item.seq > unreadAfter &&
      item.sender !== store.me
    ) {
      unreadShown = true;
      items.push({
        key: "unread",
        sig: String(unreadAfter),
        build: () =>
          h(
            "div",
            { class: "unread-divider", role: "separator" },
            h("span", {}, "Unread messages"),
          ),
      });
      prev = null;
    }
    const first = !prev || prev.sender !== item.sender || item.ts - prev.ts > RUN_GAP_MS;
    const showName = first && chat.kind === "group" && item.sender !== store.me;
    items.push(messageRow(store, chat, item, { first, showName }));
    prev = item;
  }
  reconcile(list, items);

  pane.dataset.chat = chat.id;
  const divider = switched ? list.querySelector(".unread-divider") : null;
  if (divider) {
    pane.scrollTop = Math.min(divider.offsetTop - 24, pane.scrollHeight); // first unread on top
  } else if (switched || forceBottom || atBottom) {
    pane.scrollTop = pane.scrollHeight;
  } else if (anchor) {
    // Whatever came in above (older pages, separators), the same message stays put.
    const row = [...list.children].find((el) => el.dataset.key === anchor.key);
    if (row) pane.scrollTop += row.getBoundingClientRect().top - anchor.top;
  }
}

/** The first message row at least partly in view, and where it is on screen. */
function firstVisibleRow(pane, list) {
  const top = pane.getBoundingClientRect().top;
  for (const el of list.children) {
    if (!el.classList.contains("row")) continue;
    const rect = el.getBoundingClientRect();
    if (rect.bottom > top) return { key: el.dataset.key, top: rect.top };
  }
  return null;
}
