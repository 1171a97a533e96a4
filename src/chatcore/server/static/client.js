// The chat client over the wire protocol: keeps the store in step with the
// server. No DOM: the page tells it whether a chat is being read, and it says
// when something changed.
//
// On every (re)connect: `chats` (the list and the user's own watermarks), `sync`
// from the cursors of the chats already held, the latest page of the others,
// presence of direct-chat peers, then every pending send again (same
// client_msg_id, so the server stores each once). A seq that jumps past a chat's
// cursor means pushes were lost: `history after=cursor` until the hole is filled.

import { Connection, wsUrl } from "./connection.js";
import { Keyring } from "./e2ee.js";
import { ChatStore, TYPING_TTL_MS } from "./state.js";

const HISTORY_PAGE = 50;
const GAP_PAGE = 200;
const TYPING_EVERY_MS = 3000;
const RECEIPT_DELAY_MS = 200;
const RETRIABLE = new Set(["rate_limited", "overloaded", "unavailable", "timeout"]);

export class ChatClient {
  /**
   * @param {object} options
   * @param {{user: string, token: string}} options.session who signs in
   * @param {string} options.device this tab's device id
   * @param {(chat) => boolean} options.isReading whether the user sees a chat now
   * @param {() => void} options.onChange something to show changed
   * @param {() => void} options.onUnauthorized the token was refused
   */
  constructor({ session, device, isReading, onChange, onUnauthorized }) {
    this.store = new ChatStore(session.user);
    this.isReading = isReading;
    this.onChange = onChange;
    this.conn = new Connection({
      url: wsUrl(),
      token: session.token,
      device,
      onFrame: (frame) => this.#onFrame(frame),
      onWelcome: () => this.#onWelcome(),
      onStatus: (status) => {
        this.store.status = status;
        onChange();
      },
      onUnauthorized,
    });
    this.keyring = null; // this tab's end-to-end keys (null: WebCrypto lacks X25519)
    this.keyringReady = Keyring.load(session.user, device).then((ring) => {
      this.keyring = ring;
    });
    this.syncing = false;
    this.refreshing = false;
    this.receiptTimers = new Map(); // chat id -> timer
    this.typingSent = new Map(); // chat id -> ms of the last typing frame
  }

  start() {
    this.conn.start();
  }

  /** Sign in again with a new token (after the old one expired). */
  restart(token) {
    this.conn.token = token;
    this.conn.start();
  }

  // --- connection events ------------------------------------------------------------

  async #onWelcome() {
    const { store, conn } = this;
    this.syncing = true;
    try {
      await this.keyringReady;
      this.keyring?.forgetAll(); // keys.changed pushes may have been missed meanwhile
      await this.keyring?.publish(conn).catch((error) => {
        if (error.code !== "disconnected") console.warn("chatcore: publishing the key failed", error);
      });
      const { chats } = await conn.request({ type: "chats" });
      const listed = new Set();
      for (const summary of chats) {
        const [chat] = store.upsertChat(summary);
        store.applyOwnState(chat, summary, { replace: true });
        listed.add(chat.id);
      }
      for (const id of [...store.chats.keys()]) if (!listed.has(id)) this.#forget(id);
      const held = [...store.chats.values()].filter((chat) => chat.loaded);
      if (held.length) {
        const cursors = Object.fromEntries(held.map((chat) => [chat.id, chat.cursor]));
        const synced = await conn.request({ type: "sync", cursors });
        for (const state of synced.chats) {
          const chat = store.chats.get(state.chat);
          if (!chat) continue;
          store.applyOwnState(chat, state);
          if (state.truncated) chat.reset(); // too much missed: start again from the latest page
        }
      }
      this.syncing = false;
      await Promise.all([...store.chats.values()].map((chat) => this.loadLatest(chat)));
      this.#subscribePresence([...store.chats.values()].map((chat) => store.peer(chat)));
      for (const item of store.pending.values()) if (item.state !== "failed") this.transmit(item);
      for (const chat of store.chats.values()) {
        this.#fillGap(chat);
        this.scheduleReceipts(chat);
      }
    } catch (error) {
      if (error.code !== "disconnected") console.warn("chatcore: catching up failed", error);
    } finally {
      this.syncing = false;
      this.onChange();
    }
  }

  #onFrame(frame) {
    const { store } = this;
    switch (frame.type) {
      case "message":
        this.#receive(frame);
        break;
      case "receipt":
        store.applyReceipt(frame);
        break;
      case "typing":
        store.applyTyping(frame);
        setTimeout(() => this.onChange(), TYPING_TTL_MS + 50);
        break;
      case "presence":
        store.applyPresence(frame.states);
        break;
      case "chat":
        this.keyring?.forgetChat(frame.chat.chat);
        this.addChat(frame.chat);
        break;
      case "keys.changed":
        this.keyring?.forgetUser(frame.user);
        break;
      case "accepted":
        store.markAccepted(frame); // the answer to a send that gave up waiting
        break;
      case "error":
        console.warn("chatcore: server error", frame.code, frame.message);
        break;
      default:
        break;
    }
    this.onChange();
  }

  // --- chats and messages -------------------------------------------------------------

  /** A chat view (pushed, or the answer to chat.create); returns the chat or null. */
  addChat(view) {
    const { store } = this;
    if (!view.members.includes(store.me)) {
      this.#forget(view.chat);
      return null;
    }
    const [chat, isNew] = store.upsertChat(view);
    if (isNew) {
      this.loadLatest(chat);
      this.#subscribePresence([store.peer(chat)]);
    }
    this.onChange();
    return chat;
  }

  /** Create a chat: {kind, members, title?}; resolves to the chat, rejects with a RequestError. */
  async createChat(fields) {
    const answer = await this.conn.request({ type: "chat.create", ...fields });
    return this.addChat(answer.chat);
  }

  #forget(chatId) {
    this.store.chats.delete(chatId);
    if (this.store.activeId === chatId) this.store.activeId = null;
  }

  async #refreshChats() {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      const { chats } = await this.conn.request({ type: "chats" });
      for (const summary of chats) {
        const chat = this.addChat(summary);
        if (chat) this.store.applyOwnState(chat, summary);
      }
    } catch {
      // the next welcome lists the chats again
    } finally {
      this.refreshing = false;
      this.onChange();
    }
  }

  async #receive(frame) {
    await this.#reveal([frame]);
    const chat = this.store.chats.get(frame.chat);
    if (chat) this.#addMessages(chat, [frame]);
    else this.#refreshChats(); // a chat this client has not heard of yet
    this.onChange();
  }

  /** Open the encrypted ones of `messages` (their `text`; null if they do not open). */
  async #reveal(messages) {
    await this.keyringReady;
    if (this.keyring) await this.keyring.reveal(messages);
    else for (const m of messages) if (m.encrypted) m.text = null;
  }

  #addMessages(chat, messages) {
    const added = chat.add(messages);
    for (const message of added) this.store.settle(message);
    if (added.length) this.scheduleReceipts(chat);
    this.#fillGap(chat);
  }

  /** The latest page of a chat this client holds nothing of yet. */
  async loadLatest(chat) {
    if (chat.loaded) return;
    if (chat.lastSeq === 0) {
      chat.markLoaded(false);
      return;
    }
    try {
      const page = await this.conn.request({ type: "history", chat: chat.id, limit: HISTORY_PAGE });
      await this.#reveal(page.messages);
      chat.add(page.messages);
      for (const message of page.messages) this.store.settle(message);
      chat.markLoaded(page.has_more);
      this.scheduleReceipts(chat);
      this.#fillGap(chat);
    } catch (error) {
      if (error.code !== "disconnected") console.warn("chatcore: history failed", error);
    }
    this.onChange();
  }

  /** Older messages above the first one held (the reader scrolled up). */
  async loadOlder(chat) {
    if (!chat.loaded || !chat.hasMore || chat.busy.older || !this.conn.ready) return;
    chat.busy.older = true;
    this.onChange();
    try {
      const before = chat.firstSeq();
      const page = await this.conn.request({
        type: "history",
        chat: chat.id,
        before,
        limit: HISTORY_PAGE,
      });
      await this.#reveal(page.messages);
      chat.add(page.messages);
      chat.hasMore = page.has_more && page.messages.length > 0 && chat.firstSeq() > 1;
    } catch (error) {
      if (error.code !== "disconnected") console.warn("chatcore: history failed", error);
    } finally {
      chat.busy.older = false;
      chat.version++;
      this.onChange();
    }
  }

  /** Gap recovery: fetch what lies between the cursor and the newest seq known. */
  async #fillGap(chat) {
    if (this.syncing || chat.busy.gap || !chat.hasGap() || !this.conn.ready) return;
    chat.busy.gap = true;
    try {
      while (chat.hasGap()) {
        const before = chat.cursor;
        const page = await this.conn.request({
          type: "history",
          chat: chat.id,
          after: chat.cursor,
          limit: GAP_PAGE,
        });
        await this.#reveal(page.messages);
        chat.add(page.messages);
        for (const message of page.messages) this.store.settle(message);
        if (chat.cursor === before) break; // the server has nothing more to give
      }
      this.scheduleReceipts(chat);
    } catch (error) {
      if (error.code !== "disconnected") console.warn("chatcore: gap recovery failed", error);
    } finally {
      chat.busy.gap = false;
      this.onChange();
    }
  }

  // --- receipts, typing, presence ---------------------------------------------------

  /** Send delivered/read receipts for a chat soon (a burst of messages makes one receipt). */
  scheduleReceipts(chat) {
    if (this.receiptTimers.has(chat.id)) return;
    const timer = setTimeout(() => {
      this.receiptTimers.delete(chat.id);
      this.sendReceipts(chat);
    }, RECEIPT_DELAY_MS);
    this.receiptTimers.set(chat.id, timer);
  }

  /** `read` up to the cursor if the user sees the chat, else `delivered`. */
  sendReceipts(chat) {
    const seq = chat.cursor;
    if (!this.conn.ready || seq === 0) return;
    if (this.isReading(chat) && seq > chat.readSeq) {
      if (this.conn.send({ type: "receipt", chat: chat.id, status: "read", seq })) {
        chat.readSeq = seq;
        chat.deliveredSeq = Math.max(chat.deliveredSeq, seq);
        chat.version++;
        this.onChange();
      }
    } else if (seq > chat.deliveredSeq) {
      if (this.conn.send({ type: "receipt", chat: chat.id, status: "delivered", seq })) {
        chat.deliveredSeq = seq;
      }
    }
  }

  /** The user typed in a chat's composer: at most one `typing` frame per 3 s. */
  typing(chatId) {
    const now = Date.now();
    if (now - (this.typingSent.get(chatId) ?? 0) < TYPING_EVERY_MS) return;
    if (this.conn.send({ type: "typing", chat: chatId })) this.typingSent.set(chatId, now);
  }

  #subscribePresence(users) {
    const wanted = [...new Set(users)].filter((u) => u && u !== this.store.me);
    if (!wanted.length || !this.conn.ready) return;
    this.conn
      .request({ type: "presence.subscribe", users: wanted })
      .then((answer) => {
        this.store.applyPresence(answer.states);
        this.onChange();
      })
      .catch(() => {});
  }

  // --- sending ------------------------------------------------------------------------

  /** Send a text message: shown at once with a clock, sent now or after reconnecting. */
  send(chatId, body) {
    const item = this.store.addPending(chatId, body);
    this.typingSent.delete(chatId); // typing again right after sending is news
    this.transmit(item);
    this.onChange();
    return item;
  }

  /**
   * Upload a file (POST /media with the token), then send it as an image, video or
   * file message. Shown at once as pending; an upload the server refuses (too
   * large, a type no kind accepts) marks it failed with the server's reason.
   */
  sendFile(chatId, file, body = "") {
    const item = this.store.addPending(chatId, body);
    item.kind = kindOf(file.type);
    item.attachment = { name: file.name, size: file.size, mime: file.type, uploading: true };
    this.onChange();
    // One upload after another, so files go out in the order they were picked.
    this.uploads = (this.uploads ?? Promise.resolve()).then(() => this.#upload(item, file));
    return item;
  }

  async #upload(item, file) {
    try {
      const url = new URL("../media", import.meta.url);
      url.searchParams.set("name", file.name);
      const response = await fetch(url, {
        method: "POST",
        headers: { Authorization: `Bearer ${this.conn.token}` },
        body: file,
      });
      const answer = await response.json().catch(() => ({}));
      if (response.status !== 201) throw new Error(answer.message || `upload failed (${response.status})`);
      item.kind = { image: "image", video: "video" }[answer.kind] ?? "file";
      item.attachment = {
        blob: answer.blob,
        name: file.name,
        size: answer.size,
        mime: answer.mime,
        ...(answer.thumbnail ? { thumbnail: answer.thumbnail } : {}),
      };
    } catch (error) {
      this.store.markFailed(item.client_msg_id, error.message);
      this.onChange();
      return;
    }
    await this.transmit(item);
  }

  /**
   * Fresh signed links for the attachment of message `seq` of a chat (links live a
   * few minutes): asked of GET /media/{blob}/link, put into the held message.
   */
  async refreshLinks(chatId, seq) {
    const chat = this.store.chats.get(chatId);
    const message = chat?.messages.get(seq);
    const a = message?.attachment;
    if (!a?.blob) return null;
    const url = new URL(`../media/${a.blob}/link`, import.meta.url);
    url.searchParams.set("chat", chatId);
    url.searchParams.set("seq", String(seq));
    const response = await fetch(url, { headers: { Authorization: `Bearer ${this.conn.token}` } });
    if (!response.ok) return null;
    const links = await response.json();
    message.attachment = { ...a, url: links.url, thumbnail_url: links.thumbnail_url };
    chat.version++;
    this.onChange();
    return message.attachment;
  }

  /** Send (or send again) a pending message; after a drop, the next welcome retries it. */
  async transmit(item) {
    if (!this.conn.ready) return;
    if (item.attachment?.uploading) return; // its upload failed: nothing to send
    if (item.state === "failed") item.state = "queued";
    const retry = item.sent === true; // sent before: the server looks for an earlier copy
    item.sent = true;
    try {
      // Sealed when every member has a device key; the server never sees the text then.
      const sealed =
        this.keyring && item.kind === "text"
          ? await this.keyring.sealFor(this.conn, item.chat, item.body)
          : null;
      if (sealed) {
        item.encrypted = true;
        item.text = item.body;
        this.onChange();
      }
      const accepted = await this.conn.request({
        type: "send",
        chat: item.chat,
        client_msg_id: item.client_msg_id,
        kind: item.kind,
        body: sealed ?? item.body,
        ...(sealed ? { encrypted: true } : {}),
        ...(item.attachment ? { attachment: wireAttachment(item.attachment) } : {}),
        retry,
      });
      this.store.markAccepted(accepted);
    } catch (error) {
      if (RETRIABLE.has(error.code)) {
        setTimeout(() => this.transmit(item), error.retryAfterMs ?? 2000);
      } else if (error.code !== "disconnected") {
        this.store.markFailed(item.client_msg_id, error.message);
      }
    }
    this.onChange();
  }

  /**
   * Change a group: {add?, remove?, promote?, demote?, history_visible?} (docs/groups.md).
   * Resolves to the chat (null once the user is no longer in it); a refusal (`invalid`:
   * not an admin, the creator, ...) rejects with a RequestError and changes nothing,
   * and the chat list is fetched again in case this page's view of the group was stale.
   */
  async updateMembers(chatId, change) {
    let answer;
    try {
      answer = await this.conn.request({ type: "chat.members", chat: chatId, ...change });
    } catch (error) {
      if (error.code !== "disconnected") this.#refreshChats();
      throw error;
    }
    return this.addChat(answer.chat);
  }

  /** Leave a group (anyone may; the last admin leaving hands over to the longest member). */
  async leave(chatId) {
    await this.updateMembers(chatId, { remove: [this.store.me] }); // no longer a member: forgotten
  }

  // --- changing messages --------------------------------------------------------------

  /** Edit, delete or react to message `seq`: {type: "edit"|"delete"|"react"|"unreact", ...}.
   *  The change comes back as a message event; a refusal rejects with a RequestError. */
  async change(chatId, seq, fields) {
    if (fields.type === "edit" && this.keyring) {
      // Sealed as a send is: when every member has a device key.
      const sealed = await this.keyring.sealFor(this.conn, chatId, fields.body);
      if (sealed) fields = { ...fields, body: sealed, encrypted: true };
    }
    return this.conn.request({ chat: chatId, seq, ...fields });
  }
}

/** The message kind of a file of MIME type `type` (the server checks the bytes). */
function kindOf(type) {
  if (type.startsWith("image/")) return "image";
  if (type.startsWith("video/")) return "video";
  return "file";
}

/** What a send carries of an attachment: the blob and what the upload answered. */
function wireAttachment(a) {
  const wire = { blob: a.blob, name: a.name, size: a.size, mime: a.mime };
  if (a.thumbnail) wire.thumbnail = a.thumbnail;
  return wire;
}
