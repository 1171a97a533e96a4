// The page: the login screen, then the chat app (sidebar, conversation, dialogs)
// drawn from the client's store, redrawn at most once per animation frame.

import { ChatClient } from "./client.js";
import { icon } from "./dom.js";
import { setUpPush } from "./push.js";
import {
  avatar,
  renderBanner,
  renderChatList,
  renderGroupPanel,
  renderHeader,
  renderMessages,
  renderTyping,
} from "./render.js";
import {
  devToken,
  deviceId,
  loadSession,
  saveSession,
  signIn,
  signOut,
  takeNotice,
} from "./session.js";

const $ = (id) => document.getElementById(id);
const LOAD_OLDER_PX = 120; // scrolled this close to the top, older messages load

class ChatPage {
  constructor(session) {
    this.session = session;
    this.client = new ChatClient({
      session,
      device: deviceId(),
      isReading: (chat) =>
        chat.id === this.store.activeId && document.visibilityState === "visible",
      onChange: () => this.render(),
      onUnauthorized: () => this.#renewToken(),
    });
    this.store = this.client.store;
    this.drafts = new Map(); // chat id -> unsent text
    this.unreadAfter = null; // the read watermark when the active chat was opened
    this.forceBottom = false;
    this.renderQueued = false;
    this.panelOpen = false; // the group info panel of the active chat
    this.#bind();
  }

  start() {
    this.client.start();
    this.render();
  }

  async #renewToken() {
    const renewedRecently = Date.now() - (this.renewedAt ?? 0) < 60_000;
    if (this.session.dev && !renewedRecently) {
      this.renewedAt = Date.now();
      try {
        // A dev token expired: get a new one for the same name and carry on.
        const fresh = await devToken(this.session.user);
        this.session.token = fresh.token;
        saveSession(this.session);
        this.client.restart(fresh.token);
        return;
      } catch {
        // fall through to the login screen
      }
    }
    signOut("Your session has expired. Please sign in again.");
  }

  // --- navigation ---------------------------------------------------------------------

  open(chatId) {
    const { store } = this;
    const chat = store.chats.get(chatId);
    if (!chat) return;
    const input = $("composer-input");
    if (store.active) this.drafts.set(store.activeId, input.value);
    if (store.activeId !== chatId) this.#closePanel({ focus: false });
    store.activeId = chatId;
    this.unreadAfter = store.unread(chat) ? chat.readSeq : null;
    input.value = this.drafts.get(chatId) ?? "";
    autosize(input);
    this.client.loadLatest(chat);
    this.client.sendReceipts(chat);
    this.render();
    requestAnimationFrame(() => input.focus());
  }

  close() {
    const chatId = this.store.activeId;
    this.#closePanel({ focus: false });
    this.store.activeId = null;
    this.render();
    const item = document.querySelector(`[data-chat="${CSS.escape(chatId)}"]`);
    requestAnimationFrame(() => item?.focus());
  }

  /** A click on a message's action or reaction chip: react, unreact, edit, delete. */
  async #changeMessage(button) {
    const chat = this.store.active;
    const row = button.closest(".row[data-seq]");
    if (!chat || !row) return;
    const seq = Number(row.dataset.seq);
    const kind = button.dataset.action;
    const fields = { type: kind };
    if (kind === "react" || kind === "unreact") fields.emoji = button.dataset.emoji ?? "👍";
    if (kind === "edit") {
      const old = chat.messages.get(seq);
      const body = window.prompt("Edit message", (old?.encrypted ? old.text : old?.body) ?? "");
      if (body === null || !body.trim()) return;
      fields.body = body;
    }
    if (kind === "delete" && !window.confirm("Delete this message for everyone?")) return;
    try {
      await this.client.change(chat.id, seq, fields);
    } catch (error) {
      console.warn("chatcore: change refused", error.code, error.message);
    }
  }

  // --- group info panel -------------------------------------------------------------

  #openPanel() {
    this.panelOpen = true;
    this.#groupError("");
    this.render();
    requestAnimationFrame(() => $("group-panel-close").focus());
  }

  #closePanel({ focus = true } = {}) {
    if (!this.panelOpen) return;
    this.panelOpen = false;
    $("add-member").reset();
    this.render();
    if (focus) requestAnimationFrame(() => $("group-info").focus());
  }

  /** Show (or, with "", clear) why the server refused a change of the group. */
  #groupError(text) {
    $("group-error").textContent = text;
  }

  /**
   * Ask the server for a change of the open group. A refusal (not an admin, the
   * creator, ...) is shown in the panel, and the page keeps the group as the server
   * has it: nothing changes until the server's answer or push says so.
   */
  async #changeGroup(change) {
    const chat = this.store.active;
    if (!chat) return false;
    this.#groupError("");
    try {
      await this.client.updateMembers(chat.id, change);
      return true;
    } catch (error) {
      this.#groupError(refusal(error));
      this.render(); // a toggle flipped by the click goes back to what the group says
      return false;
    }
  }

  async #memberAction(button) {
    const chat = this.store.active;
    const user = button.dataset.user;
    const kind = button.dataset.memberAction;
    if (!chat || !user) return;
    const question = `Remove ${user} from ${this.store.title(chat)}?`;
    if (kind === "remove" && !window.confirm(question)) return;
    await this.#changeGroup({ [kind]: [user] });
  }

  submit() {
    const input = $("composer-input");
    const chat = this.store.active;
    const body = input.value.trim();
    if (!chat || !body) return;
    input.value = "";
    autosize(input);
    this.drafts.delete(chat.id);
    this.forceBottom = true;
    this.client.send(chat.id, body);
  }

  // --- drawing ------------------------------------------------------------------------

  render() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.#draw();
    });
  }

  #draw() {
    const { store } = this;
    const chat = store.active;
    renderBanner(store, $("banner"));
    renderChatList(store, $("chat-list"), {
      filter: $("chat-filter").value,
      onOpen: (id) => this.open(id),
    });
    $("app").classList.toggle("show-chat", Boolean(chat));
    $("empty").hidden = Boolean(chat);
    $("chat-view").hidden = !chat;
    const panel = Boolean(chat && this.panelOpen && chat.kind === "group");
    $("group-panel").hidden = !panel;
    $("chat-view").classList.toggle("with-panel", panel);
    $("group-info").setAttribute("aria-expanded", String(panel));
    if (panel) renderGroupPanel(store, $("group-panel"));
    const unread = [...store.chats.values()].reduce((n, c) => n + store.unread(c), 0);
    document.title = unread ? `(${unread}) chatcore` : "chatcore";
    if (!chat) return;
    const pane = $("messages");
    renderHeader(store, $("conv-header"));
    renderMessages(store, pane, { unreadAfter: this.unreadAfter, forceBottom: this.forceBottom });
    renderTyping(store, $("typing"));
    this.forceBottom = false;
    this.#updateJump();
    if (pane.scrollHeight <= pane.clientHeight) this.client.loadOlder(chat); // fill the pane
  }

  #updateJump() {
    const pane = $("messages");
    $("jump").hidden = pane.scrollHeight - pane.scrollTop - pane.clientHeight < 200;
  }

  // --- page wiring --------------------------------------------------------------------

  #bind() {
    $("me-avatar").replaceChildren(avatar(this.store.me, { size: "small" }));
    $("me-name").textContent = this.store.me;
    for (const [id, name] of [
      ["new-direct", "chat"],
      ["new-group", "group"],
      ["logout", "logout"],
      ["back", "back"],
      ["send", "send"],
      ["attach", "attach"],
      ["jump", "down"],
      ["group-info", "info"],
      ["group-panel-close", "close"],
    ]) {
      $(id).replaceChildren(icon(name));
    }

    $("logout").addEventListener("click", () => signOut());
    $("back").addEventListener("click", () => this.close());
    $("group-info").addEventListener("click", () =>
      this.panelOpen ? this.#closePanel() : this.#openPanel(),
    );
    $("group-panel-close").addEventListener("click", () => this.#closePanel());
    $("leave-group").addEventListener("click", async () => {
      const chat = this.store.active;
      if (!chat || !window.confirm(`Leave ${this.store.title(chat)}?`)) return;
      this.#groupError("");
      try {
        await this.client.leave(chat.id);
        this.close();
      } catch (error) {
        this.#groupError(refusal(error));
      }
    });
    $("member-list").addEventListener("click", (event) => {
      const button = event.target.closest("[data-member-action]");
      if (button) this.#memberAction(button);
    });
    $("history-visible").addEventListener("change", (event) => {
      this.#changeGroup({ history_visible: event.target.checked });
    });
    $("add-member").addEventListener("submit", async (event) => {
      event.preventDefault();
      const chat = this.store.active;
      const field = $("add-member-name");
      const user = field.value.trim();
      if (!chat || !user) return;
      if (chat.members.includes(user)) {
        this.#groupError(`${user} is already a member.`);
        return;
      }
      if (await this.#changeGroup({ add: [user] })) field.value = "";
    });
    $("chat-filter").addEventListener("input", () => this.render());
    $("jump").addEventListener("click", () => {
      const pane = $("messages");
      pane.scrollTo({ top: pane.scrollHeight, behavior: "smooth" });
    });

    const pane = $("messages");
    pane.addEventListener("scroll", () => {
      if (pane.scrollTop < LOAD_OLDER_PX && this.store.active) {
        this.client.loadOlder(this.store.active);
      }
      this.#updateJump();
    });
    pane.addEventListener("click", (event) => {
      const action = event.target.closest("[data-action]");
      if (action) {
        this.#changeMessage(action);
        return;
      }
      const row = event.target.closest(".row[data-retry]");
      const item = row && this.store.pending.get(row.dataset.retry);
      if (item) this.client.transmit(item);
    });

    // Attachments: pick a file, upload and send it (the typed text is its caption).
    const picker = $("attach-input");
    $("attach").addEventListener("click", () => picker.click());
    picker.addEventListener("change", () => {
      const chat = this.store.active;
      const file = picker.files[0];
      picker.value = "";
      if (!chat || !file) return;
      const caption = $("composer-input").value.trim();
      $("composer-input").value = "";
      this.drafts.delete(chat.id);
      this.forceBottom = true;
      this.client.sendFile(chat.id, file, caption);
    });
    // A signed link lives minutes: an image that fails to load gets fresh links once
    // a minute at most; a file link is renewed when clicked.
    pane.addEventListener(
      "error",
      (event) => {
        const el = event.target;
        if (!el.dataset?.blob || !el.dataset.seq || !this.store.active) return;
        const key = `${this.store.activeId}:${el.dataset.seq}`;
        this.renewed ??= new Map();
        if (Date.now() - (this.renewed.get(key) ?? 0) < 60_000) return;
        this.renewed.set(key, Date.now());
        this.client.refreshLinks(this.store.activeId, Number(el.dataset.seq));
      },
      true,
    );
    pane.addEventListener("click", async (event) => {
      const link = event.target.closest("a.file[data-blob][data-seq]");
      if (!link || !this.store.active || link.dataset.fresh) return;
      event.preventDefault();
      const fresh = await this.client.refreshLinks(this.store.activeId, Number(link.dataset.seq));
      const go = document.createElement("a");
      go.href = fresh?.url ?? link.href;
      go.download = link.getAttribute("download") ?? "";
      go.dataset.fresh = "1";
      document.body.append(go);
      go.click();
      go.remove();
    });

    const input = $("composer-input");
    input.addEventListener("input", () => {
      const chat = this.store.active;
      autosize(input);
      if (!chat) return;
      this.drafts.set(chat.id, input.value);
      if (input.value.trim()) this.client.typing(chat.id);
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      }
    });
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
      input.focus();
    });

    document.addEventListener("visibilitychange", () => {
      if (this.store.active) this.client.sendReceipts(this.store.active);
    });
    window.addEventListener("online", () => this.client.conn.retryNow());
    document.addEventListener("keydown", (event) => {
      if (event.key !== "Escape" || !this.store.active || document.querySelector("dialog[open]")) {
        return;
      }
      if (this.panelOpen) this.#closePanel();
      else this.close();
    });

    this.#bindDialog($("new-direct"), $("direct-dialog"), (form) => {
      const user = form.user.value.trim();
      if (user === this.store.me) throw new Error("That is you. Pick someone else.");
      return { kind: "direct", members: [user] };
    });
    this.#bindDialog($("new-group"), $("group-dialog"), (form) => {
      const members = form.members.value
        .split(",")
        .map((u) => u.trim())
        .filter((u) => u && u !== this.store.me);
      if (!members.length) throw new Error("Add at least one other member.");
      const history_visible = form.history.checked; // members added later see earlier messages
      return { kind: "group", title: form.title.value.trim(), members, history_visible };
    });
  }

  /** A "new chat" dialog: build the request from the form, create the chat, open it. */
  #bindDialog(button, dialog, fieldsFrom) {
    const form = dialog.querySelector("form");
    const error = dialog.querySelector(".form-error");
    button.addEventListener("click", () => {
      form.reset();
      error.textContent = "";
      dialog.showModal();
    });
    dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      if (!form.reportValidity()) return;
      try {
        const chat = await this.client.createChat(fieldsFrom(form));
        dialog.close();
        if (chat) this.open(chat.id);
      } catch (e) {
        error.textContent =
          e.code === "disconnected" ? "Not connected. Try again in a moment." : e.message;
      }
    });
  }
}

/** What the page says when the server refused a request. */
function refusal(error) {
  if (error.code === "disconnected") return "Not connected. Try again in a moment.";
  const text = error.message || error.code || "refused";
  return `Not changed: ${text}`;
}

function autosize(textarea) {
  textarea.style.height = "auto";
  textarea.style.height = `${Math.min(textarea.scrollHeight, 160)}px`;
}

// --- start --------------------------------------------------------------------------

function showLogin() {
  const form = $("login-form");
  const error = $("login-error");
  error.textContent = takeNotice();
  $("login").hidden = false;
  $("login-name").focus();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      const session = await signIn({
        name: form.user.value.trim(),
        token: form.token.value.trim(),
      });
      saveSession(session);
      $("login").hidden = true;
      startApp(session);
    } catch (e) {
      error.textContent = e.message;
    }
  });
}

function startApp(session) {
  $("app").hidden = false;
  const page = new ChatPage(session);
  window.chatcore = page; // for the console and end-to-end tests
  page.start();
  setUpPush(page.client, $("enable-push"));
}

const session = loadSession();
if (session) startApp(session);
else showLogin();
