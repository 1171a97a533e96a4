// The WebSocket connection: hello/welcome, requests matched to answers by `id`,
// heartbeats, and reconnecting with exponential backoff after a drop.
//
// Frames that answer a request resolve (or, for `error`, reject) its promise;
// every other frame (pushes: message, receipt, typing, presence, chat, and
// answers that arrive after their request gave up) goes to `onFrame`.

export const SUBPROTOCOL = "chatcore.v1.json";
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 30_000;
const REQUEST_TIMEOUT_MS = 15_000;
const PONG_TIMEOUT_MS = 10_000;

/** A failed request: `code` is a protocol error code, or "disconnected"/"timeout". */
export class RequestError extends Error {
  constructor(code, message, retryAfterMs = null) {
    super(message);
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

/** `/ws` next to the folder this module is served from (so a mounted server works too). */
export function wsUrl(base = import.meta.url) {
  const url = new URL("../ws", base);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

export class Connection {
  #ws = null;
  #ready = false;
  #stopped = true;
  #nextId = 1;
  #waiting = new Map(); // id -> {resolve, reject, timer}
  #attempt = 0;
  #retryTimer = null;
  #pingTimer = null;
  #pongTimer = null;

  /**
   * @param {object} options
   * @param {string} options.url the `/ws` URL
   * @param {string} options.token the JWT sent in `hello`
   * @param {string} options.device this tab's device id
   * @param {(frame: object) => void} options.onFrame pushes and late answers
   * @param {(welcome: object, reconnect: boolean) => void} options.onWelcome the session is open
   * @param {(status: string) => void} options.onStatus connecting | online | reconnecting
   * @param {() => void} options.onUnauthorized the token was refused (close 4001)
   */
  constructor({ url, token, device, onFrame, onWelcome, onStatus, onUnauthorized }) {
    Object.assign(this, { url, token, device, onFrame, onWelcome, onStatus, onUnauthorized });
    this.welcomed = false;
  }

  get ready() {
    return this.#ready;
  }

  start() {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#open();
  }

  stop() {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    this.#ws?.close(1000, "bye");
    this.#teardown();
  }

  /** Skip the rest of the backoff (the browser says it is back online). */
  retryNow() {
    if (this.#stopped || this.#ws) return;
    clearTimeout(this.#retryTimer);
    this.#open();
  }

  /** Send a request and wait for its answer; rejects with a RequestError. */
  request(fields, { timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
    if (!this.#ready) {
      return Promise.reject(new RequestError("disconnected", "not connected"));
    }
    return this.#request(fields, timeoutMs);
  }

  /** Send a frame that expects no answer; false when not connected. */
  send(fields) {
    if (!this.#ready) return false;
    this.#ws.send(JSON.stringify(fields));
    return true;
  }

  #request(fields, timeoutMs) {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new RequestError("timeout", `no answer to ${fields.type}`));
      }, timeoutMs);
      this.#waiting.set(id, { resolve, reject, timer });
      this.#ws.send(JSON.stringify({ ...fields, id }));
    });
  }

  #open() {
    this.onStatus(this.#attempt ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.url, SUBPROTOCOL);
    this.#ws = ws;
    ws.onopen = () => this.#hello(ws);
    ws.onmessage = (event) => this.#receive(event);
    ws.onclose = (event) => this.#closed(ws, event);
  }

  async #hello(ws) {
    try {
      const welcome = await this.#request(
        { type: "hello", token: this.token, device: this.device, batch: true },
        REQUEST_TIMEOUT_MS,
      );
      if (ws !== this.#ws) return;
      const reconnect = this.welcomed;
      this.welcomed = true;
      this.#ready = true;
      this.#attempt = 0;
      this.#heartbeat((welcome.heartbeat_s ?? 30) * 1000);
      this.onStatus("online");
      this.onWelcome(welcome, reconnect);
    } catch (error) {
      if (ws !== this.#ws) return;
      ws.close(4000, "no welcome");
      this.#closed(ws, { code: error.code === "unauthorized" ? 4001 : 4000 });
    }
  }

  #receive(event) {
    if (typeof event.data !== "string") return; // JSON subprotocol: text frames only
    let parsed;
    try {
      parsed = JSON.parse(event.data);
    } catch {
      return;
    }
    // A batch (we said `batch: true` in hello): an array of frames, in order.
    for (const frame of Array.isArray(parsed) ? parsed : [parsed]) this.#dispatch(frame);
  }

  #dispatch(frame) {
    if (frame === null || typeof frame !== "object") return;
    const waiter = frame.id === undefined ? null : this.#waiting.get(frame.id);
    if (!waiter) {
      this.onFrame(frame);
      return;
    }
    this.#waiting.delete(frame.id);
    clearTimeout(waiter.timer);
    if (frame.type === "error") {
      waiter.reject(new RequestError(frame.code, frame.message, frame.retry_after_ms ?? null));
    } else {
      waiter.resolve(frame);
    }
  }

  #heartbeat(intervalMs) {
    this.#pingTimer = setInterval(() => {
      if (!this.#ready) return;
      clearTimeout(this.#pongTimer);
      // A connection that cannot answer a ping in time is dead: drop it and reconnect.
      this.#pongTimer = setTimeout(() => this.#drop(this.#ws), PONG_TIMEOUT_MS);
      this.#request({ type: "ping" }, PONG_TIMEOUT_MS).then(
        () => clearTimeout(this.#pongTimer),
        () => {},
      );
    }, intervalMs);
  }

  /** Give up on a socket now, without waiting for a close handshake that may never come. */
  #drop(ws) {
    if (!ws || ws !== this.#ws) return;
    ws.close(4000, "unresponsive");
    this.#closed(ws, { code: 4000 });
  }

  #closed(ws, event) {
    if (ws !== this.#ws) return;
    this.#teardown();
    if (this.#stopped) return;
    if (event.code === 4001) {
      this.#stopped = true;
      this.onUnauthorized();
      return;
    }
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.#attempt);
    this.#attempt++;
    this.onStatus("reconnecting");
    // Jitter keeps a crowd of clients from reconnecting in lockstep.
    this.#retryTimer = setTimeout(() => this.#open(), delay / 2 + Math.random() * (delay / 2));
  }

  #teardown() {
    this.#ws = null;
    this.#ready = false;
    clearInterval(this.#pingTimer);
    clearTimeout(this.#pongTimer);
    for (const { reject, timer } of this.#waiting.values()) {
      clearTimeout(timer);
      reject(new RequestError("disconnected", "connection lost"));
    }
    this.#waiting.clear();
  }
}
