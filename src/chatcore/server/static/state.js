// Client-side chat state: plain data and the rules over it. No DOM, no network.
//
// Per chat the client keeps the messages it holds (by seq), its `cursor` (the
// highest seq up to which it holds every message since its first page), the
// user's own watermarks and the other members' watermarks, from which the ticks
// on the user's messages follow. Sends not yet sequenced are `pending`, keyed by
// their client_msg_id, and survive a reload of the tab (sessionStorage).

export const TYPING_TTL_MS = 6000;

/** Kinds of lifecycle events: sequenced like messages, applied to their target, never shown. */
export const EVENT_KINDS = new Set(["edit", "delete", "react", "unreact"]);

/**
 * A message as a lifecycle event (edit, delete, react, unreact, naming its `target`)
 * leaves it; the message itself when the event is not for it or already in it
 * (`changed_seq`: a message from history holds the events before it).
 */
export function applyChange(message, event) {
  if (event.target !== message.seq || message.deleted) return message;
  if (event.seq <= (message.changed_seq ?? 0)) return message;
  const next = { ...message, changed_seq: event.seq };
  switch (event.kind) {
    case "edit":
      if (event.sender !== message.sender) return next;
      // `text`: the edit's opened text when it was sealed (see client.js)
      return { ...next, body: event.body, encrypted: event.encrypted ?? false, text: event.text, edited_ts: event.ts };
    case "delete":
      return { ...next, body: "", attachment: null, reactions: [], deleted: true };
    case "react":
    case "unreact": {
      const users = new Map((message.reactions ?? []).map((r) => [r.emoji, [...r.users]]));
      const who = users.get(event.body) ?? [];
      if (event.kind === "react" && !who.includes(event.sender)) who.push(event.sender);
      if (event.kind === "unreact" && who.includes(event.sender)) who.splice(who.indexOf(event.sender), 1);
      users.set(event.body, who);
      const reactions = [...users].filter(([, u]) => u.length).map(([emoji, u]) => ({ emoji, users: u }));
      return { ...next, reactions };
    }
    default:
      return message;
  }
}

/** Raise a member's watermark in `map` to `seq` (watermarks never go down). */
function raise(map, user, seq) {
  if ((map.get(user) ?? 0) < seq) map.set(user, seq);
}

/** One chat as this client knows it. */
export class Chat {
  #sorted = null; // messages ascending by seq, rebuilt after a change

  constructor(view) {
    this.id = view.chat;
    this.messages = new Map(); // seq -> message frame
    this.cursor = 0; // every message in (first held seq .. cursor] is held
    this.loaded = false; // its latest page has been fetched (or it is new)
    this.hasMore = false; // older history exists beyond the first held seq
    this.busy = { older: false, gap: false };
    this.floor = 0; // seqs up to here are hidden from the user (joined with history hidden)
    this.readSeq = 0; // the user's own watermarks
    this.deliveredSeq = 0;
    this.read = new Map(); // other member -> read watermark
    this.delivered = new Map(); // other member -> delivered watermark
    this.typing = new Map(); // member -> expiry (ms)
    this.version = 0; // bumped whenever what the message pane shows changes
    this.update(view);
  }

  update(view) {
    this.kind = view.kind;
    this.members = view.members;
    this.title = view.title ?? null;
    this.admins = view.admins ?? [];
    this.creator = view.creator ?? null;
    this.historyVisible = view.history_visible ?? true; // left out of the view when true
    this.lastSeq = Math.max(this.lastSeq ?? 0, view.last_seq ?? 0);
    this.version++;
  }

  /** Messages to show, ascending by seq: lifecycle events are applied, not shown. */
  shown() {
    return this.ordered().filter((m) => !EVENT_KINDS.has(m.kind));
  }

  /** Messages held, ascending by seq (lifecycle events included). */
  ordered() {
    this.#sorted ??= [...this.messages.values()].sort((a, b) => a.seq - b.seq);
    return this.#sorted;
  }

  firstSeq() {
    const list = this.ordered();
    return list.length ? list[0].seq : this.cursor + 1;
  }

  /** Add messages (deduplicated by seq); returns the ones that were new. */
  add(messages) {
    const added = [];
    for (const m of messages) {
      if (this.messages.has(m.seq)) continue;
      this.messages.set(m.seq, m);
      added.push(m);
      this.lastSeq = Math.max(this.lastSeq, m.seq);
      if (EVENT_KINDS.has(m.kind)) {
        const target = m.target == null ? null : this.messages.get(m.target);
        if (target) this.messages.set(m.target, applyChange(target, m));
        continue;
      }
      this.typing.delete(m.sender);
      // The server counts a sender as having read up to their own message (cumulative).
      raise(this.read, m.sender, m.seq);
      raise(this.delivered, m.sender, m.seq);
    }
    if (added.length) {
      this.#sorted = null;
      this.#advance();
      this.version++;
    }
    return added;
  }

  /**
   * The latest page is in: from now on the cursor counts from its first seq. With
   * nothing older to fetch, what lies before the page is hidden from the user (a
   * member added while the group's history was hidden): it is neither held nor unread.
   */
  markLoaded(hasMore) {
    this.loaded = true;
    this.hasMore = hasMore;
    if (this.messages.size) this.cursor = this.ordered()[0].seq - 1;
    else if (!hasMore) this.cursor = Math.max(this.cursor, this.lastSeq);
    if (!hasMore) this.floor = this.cursor;
    this.#advance();
    this.version++;
  }

  #advance() {
    if (!this.loaded) return;
    while (this.messages.has(this.cursor + 1)) this.cursor++;
  }

  /** Forget every message (after a truncated sync the client reloads the latest page). */
  reset() {
    this.messages.clear();
    this.#sorted = null;
    this.cursor = 0;
    this.floor = 0;
    this.loaded = false;
    this.hasMore = false;
    this.version++;
  }

  /** Whether a message is missing between the cursor and the newest seq known. */
  hasGap() {
    return this.loaded && this.lastSeq > this.cursor;
  }

  others(me) {
    return this.members.filter((u) => u !== me);
  }

  /** A member's role in a group: "creator", "admin" or "member" (null: not a member). */
  role(user) {
    if (!this.members.includes(user)) return null;
    if (this.kind === "group" && user === this.creator) return "creator";
    return this.kind === "group" && this.admins.includes(user) ? "admin" : "member";
  }

  /** Whether `user` may change this group (add, remove, promote, demote, options). */
  isAdmin(user) {
    return this.kind === "group" && this.members.includes(user) && this.admins.includes(user);
  }
}

/** Everything the page shows: chats, pending sends, presence, the open chat. */
export class ChatStore {
  constructor(me, storage = globalThis.sessionStorage) {
    this.me = me;
    this.chats = new Map(); // chat id -> Chat
    this.pending = new Map(); // client_msg_id -> pending send
    this.presence = new Map(); // user -> {status, last_seen}
    this.activeId = null;
    this.status = "connecting"; // connecting | online | reconnecting
    this.storage = storage;
    this.#loadPending();
  }

  // --- chats -----------------------------------------------------------------

  get active() {
    return this.activeId ? (this.chats.get(this.activeId) ?? null) : null;
  }

  /** Add or update a chat from a `chat` view; returns [chat, isNew]. */
  upsertChat(view) {
    const known = this.chats.get(view.chat);
    if (known) {
      known.update(view);
      return [known, false];
    }
    const chat = new Chat(view);
    this.chats.set(chat.id, chat);
    return [chat, true];
  }

  /**
   * Apply the user's own watermarks from a `chats` or `synced` entry. With
   * `replace`, the server's values win even if lower (a receipt this client sent
   * may have been lost with its connection; it is then sent again).
   */
  applyOwnState(chat, state, { replace = false } = {}) {
    chat.lastSeq = Math.max(chat.lastSeq, state.last_seq ?? 0);
    const read = state.read_seq ?? 0;
    const delivered = Math.max(state.delivered_seq ?? 0, read);
    chat.readSeq = replace ? read : Math.max(chat.readSeq, read);
    chat.deliveredSeq = replace ? delivered : Math.max(chat.deliveredSeq, delivered);
    // Other members' watermarks, when the server includes them (an extension field).
    for (const w of state.watermarks ?? []) {
      if (w.user === this.me) continue;
      raise(chat.read, w.user, w.read_seq ?? 0);
      raise(chat.delivered, w.user, Math.max(w.delivered_seq ?? 0, w.read_seq ?? 0));
    }
    chat.version++;
  }

  /** A `receipt` frame: someone's watermark moved (mine, from another device, too). */
  applyReceipt(frame) {
    const chat = this.chats.get(frame.chat);
    if (!chat) return;
    if (frame.user === this.me) {
      if (frame.status === "read") chat.readSeq = Math.max(chat.readSeq, frame.seq);
      chat.deliveredSeq = Math.max(chat.deliveredSeq, frame.seq);
    } else {
      if (frame.status === "read") raise(chat.read, frame.user, frame.seq);
      raise(chat.delivered, frame.user, frame.seq);
    }
    chat.version++;
  }

  applyTyping(frame, now = Date.now()) {
    const chat = this.chats.get(frame.chat);
    if (!chat || frame.user === this.me) return;
    chat.typing.set(frame.user, now + TYPING_TTL_MS);
  }

  /** Members typing in a chat now (expired entries are dropped). */
  typingIn(chat, now = Date.now()) {
    for (const [user, until] of chat.typing) if (until <= now) chat.typing.delete(user);
    return [...chat.typing.keys()];
  }

  applyPresence(states) {
    for (const s of states) this.presence.set(s.user, s);
  }

  // --- derived views ---------------------------------------------------------

  /** The other member of a direct chat (or null). */
  peer(chat) {
    if (chat.kind !== "direct") return null;
    return chat.others(this.me)[0] ?? this.me;
  }

  title(chat) {
    if (chat.kind === "direct") return this.peer(chat);
    return chat.title || chat.others(this.me).join(", ") || "Group";
  }

  /** Unread messages: past my read watermark, not sent by me, not lifecycle events. */
  unread(chat) {
    const read = Math.max(chat.readSeq, chat.floor); // before the floor: hidden, not unread
    let count = Math.max(0, chat.lastSeq - read);
    for (const m of chat.ordered()) {
      if (m.seq > read && (m.sender === this.me || EVENT_KINDS.has(m.kind))) count--;
    }
    return Math.max(0, count);
  }

  /** The newest thing in a chat: a pending send, else the last message held. */
  lastItem(chat) {
    const pending = this.pendingIn(chat.id);
    if (pending.length) return pending[pending.length - 1];
    const list = chat.shown();
    return list.length ? list[list.length - 1] : null;
  }

  lastActivity(chat) {
    return this.lastItem(chat)?.ts ?? 0;
  }

  /** Chats, the most recently active first. */
  sortedChats() {
    return [...this.chats.values()].sort(
      (a, b) => this.lastActivity(b) - this.lastActivity(a) || a.id.localeCompare(b.id),
    );
  }

  /**
   * The tick of a message: "pending" (clock), "failed", "sent" (✓, accepted),
   * "delivered" (✓✓) or "read" (blue ✓✓), plus how many of the others read it.
   */
  tick(chat, item) {
    if (item.state === "failed") return { status: "failed", readBy: 0, of: 0 };
    if (item.seq === undefined) {
      const status = item.state === "accepted" ? "sent" : "pending";
      return { status, readBy: 0, of: 0 };
    }
    const others = chat.others(this.me);
    const readBy = others.filter((u) => (chat.read.get(u) ?? 0) >= item.seq).length;
    const deliveredTo = others.filter((u) => (chat.delivered.get(u) ?? 0) >= item.seq).length;
    let status = "sent";
    if (others.length && readBy === others.length) status = "read";
    else if (others.length && deliveredTo === others.length) status = "delivered";
    return { status, readBy, of: others.length };
  }

  // --- pending sends -----------------------------------------------------------

  /** A new outgoing text message, shown at once with a clock. */
  addPending(chatId, body, now = Date.now()) {
    const item = {
      chat: chatId,
      client_msg_id: crypto.randomUUID(),
      sender: this.me,
      kind: "text",
      body,
      ts: now,
      state: "queued", // queued | accepted | failed
      message_id: null,
    };
    this.pending.set(item.client_msg_id, item);
    this.#savePending();
    return item;
  }

  pendingIn(chatId) {
    return [...this.pending.values()].filter((p) => p.chat === chatId);
  }

  /** `accepted` for one of my sends: durable, waiting for its seq. */
  markAccepted(frame) {
    const item = this.pending.get(frame.client_msg_id);
    if (!item) return false;
    item.state = "accepted";
    item.message_id = frame.message_id;
    this.#savePending();
    return true;
  }

  markFailed(clientMsgId, reason) {
    const item = this.pending.get(clientMsgId);
    if (!item) return;
    item.state = "failed";
    item.error = reason;
    this.#savePending();
  }

  /** A sequenced message of mine replaces its pending entry. */
  settle(message) {
    if (message.sender !== this.me) return false;
    const done = this.pending.delete(message.client_msg_id);
    if (done) this.#savePending();
    return done;
  }

  #storageKey() {
    return `chatcore.pending.${this.me}`;
  }

  #loadPending() {
    try {
      const saved = JSON.parse(this.storage?.getItem(this.#storageKey()) ?? "[]");
      for (const p of saved) this.pending.set(p.client_msg_id, { ...p, state: "queued" });
    } catch {
      // A corrupt entry is dropped; the messages were never confirmed anyway.
    }
  }

  #savePending() {
    this.storage?.setItem(this.#storageKey(), JSON.stringify([...this.pending.values()]));
  }
}
