// End-to-end encryption for the page: scheme v1 of docs/encryption.md with WebCrypto
// (X25519, HKDF-SHA256, AES-256-GCM), byte for byte what chatcore.e2ee.scheme does.
//
// Each tab is a device: its X25519 key pair is made once and kept in IndexedDB (the
// private key is not extractable), its public key published with `keys.publish` on
// every welcome. A send is sealed when every member of the chat has a device key
// (`keys.fetch {chat}`), else it goes in clear. The keys fetched for a chat are kept
// until a `keys.changed` push names a member, a `chat` push changes the chat, or the
// tab is welcomed again (pushes may have been missed). No DOM here.

const LABEL = "chatcore-e2ee/1";
const WRAP_LABEL = "chatcore-e2ee/1 wrap";
const DB_NAME = "chatcore-e2ee";
const STORE = "keys";
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

export function b64u(bytes) {
  let text = "";
  for (const b of new Uint8Array(bytes)) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function unb64u(text) {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Error("not base64url");
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Each string as a 4-byte big-endian length and its UTF-8 bytes. */
function lp(...strings) {
  return concat(
    ...strings.flatMap((s) => {
      const raw = enc.encode(s);
      const len = new Uint8Array(4);
      new DataView(len.buffer).setUint32(0, raw.length);
      return [len, raw];
    }),
  );
}

const subtle = () => globalThis.crypto.subtle;

async function kek(privateKey, publicRaw, epk, recipientRaw, user, device) {
  const peer = await subtle().importKey("raw", publicRaw, { name: "X25519" }, false, []);
  const shared = await subtle().deriveBits({ name: "X25519", public: peer }, privateKey, 256);
  const ikm = await subtle().importKey("raw", shared, "HKDF", false, ["deriveKey"]);
  return subtle().deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: concat(epk, recipientRaw), info: lp(WRAP_LABEL, user, device) },
    ikm,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

const aad = (chat, sender, device) => lp(LABEL, chat, sender, device);
const ZERO_IV = new Uint8Array(12);

/**
 * Seal `text` for every device key of `recipients` ([{user, device, version, public_key}]).
 * Returns the envelope body (base64url JSON).
 */
export async function seal(text, { chat, sender, senderDevice, recipients }) {
  const messageKey = crypto.getRandomValues(new Uint8Array(32));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const aes = await subtle().importKey("raw", messageKey, "AES-GCM", false, ["encrypt"]);
  const ct = await subtle().encrypt(
    { name: "AES-GCM", iv, additionalData: aad(chat, sender, senderDevice) },
    aes,
    enc.encode(text),
  );
  const eph = await subtle().generateKey({ name: "X25519" }, false, ["deriveBits"]);
  const epk = new Uint8Array(await subtle().exportKey("raw", eph.publicKey));
  const keys = [];
  for (const r of recipients) {
    const publicRaw = unb64u(r.public_key);
    const wrapKey = await kek(eph.privateKey, publicRaw, epk, publicRaw, r.user, r.device);
    const wk = await subtle().encrypt({ name: "AES-GCM", iv: ZERO_IV }, wrapKey, messageKey);
    keys.push({ user: r.user, device: r.device, version: r.version, wk: b64u(wk) });
  }
  if (!keys.length) throw new Error("no device key to encrypt for");
  const env = { v: 1, device: senderDevice, epk: b64u(epk), iv: b64u(iv), ct: b64u(ct), keys };
  return b64u(enc.encode(JSON.stringify(env)));
}

/** The text of an envelope `body` that `sender` sent in `chat`, opened with `ring`. */
export async function unseal(body, { chat, sender, user, ring }) {
  const env = JSON.parse(dec.decode(unb64u(body)));
  if (env.v !== 1) throw new Error(`envelope version ${env.v}`);
  const mine = env.keys.find((k) => k.user === user && k.device === ring.device);
  if (!mine) throw new Error(`not encrypted for device ${ring.device}`);
  const pair = ring.pairs.get(mine.version);
  if (!pair) throw new Error(`encrypted for key version ${mine.version}, not held`);
  const epk = unb64u(env.epk);
  const wrapKey = await kek(pair.privateKey, epk, epk, pair.publicRaw, user, ring.device);
  const messageKey = await subtle().decrypt(
    { name: "AES-GCM", iv: ZERO_IV },
    wrapKey,
    unb64u(mine.wk),
  );
  const aes = await subtle().importKey("raw", messageKey, "AES-GCM", false, ["decrypt"]);
  const plain = await subtle().decrypt(
    { name: "AES-GCM", iv: unb64u(env.iv), additionalData: aad(chat, sender, env.device) },
    aes,
    unb64u(env.ct),
  );
  return dec.decode(plain);
}

// --- the device's keyring in IndexedDB --------------------------------------------------

function idb(mode, run) {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onerror = () => reject(request.error);
    request.onsuccess = () => {
      const db = request.result;
      const tx = db.transaction(STORE, mode);
      const result = run(tx.objectStore(STORE));
      tx.oncomplete = () => {
        db.close();
        resolve(result.result);
      };
      tx.onerror = tx.onabort = () => {
        db.close();
        reject(tx.error);
      };
    };
  });
}

/** One device's key pairs by version (the highest is published). */
export class Keyring {
  constructor(user, device, pairs) {
    this.user = user;
    this.device = device;
    this.pairs = pairs; // version -> {privateKey, publicRaw}
    this.chatKeys = new Map(); // chat id -> the users of its last `keys` answer
    this.changes = 0; // pushes so far that may have made kept keys stale
  }

  /** A `keys.changed` push named `user`: drop the kept keys of every chat they are in. */
  forgetUser(user) {
    this.changes += 1;
    for (const [chat, users] of this.chatKeys) {
      if (users.some((u) => u.user === user)) this.chatKeys.delete(chat);
    }
  }

  /** A chat's members may have changed (a `chat` push): drop its kept keys. */
  forgetChat(chat) {
    this.changes += 1;
    this.chatKeys.delete(chat);
  }

  /** A new session: drop every kept key. */
  forgetAll() {
    this.changes += 1;
    this.chatKeys.clear();
  }

  get version() {
    return Math.max(...this.pairs.keys());
  }

  get publicKey() {
    return b64u(this.pairs.get(this.version).publicRaw);
  }

  /** This device's keyring from IndexedDB, made (and kept) on first use; null when the
   *  browser has no X25519 in WebCrypto. */
  static async load(user, device) {
    try {
      const id = `${user}/${device}`;
      const saved = await idb("readonly", (store) => store.get(id));
      if (saved) return new Keyring(user, device, new Map(saved.pairs));
      const pair = await subtle().generateKey({ name: "X25519" }, false, ["deriveBits"]);
      const publicRaw = new Uint8Array(await subtle().exportKey("raw", pair.publicKey));
      const ring = new Keyring(user, device, new Map([[1, { privateKey: pair.privateKey, publicRaw }]]));
      await ring.save();
      return ring;
    } catch (error) {
      console.warn("chatcore: end-to-end encryption is not available here", error);
      return null;
    }
  }

  save() {
    const pairs = [...this.pairs.entries()];
    return idb("readwrite", (store) => store.put({ pairs }, `${this.user}/${this.device}`));
  }

  /** Publish the current key; a directory holding a newer version of this device (its
   *  storage was cleared) makes the key move above it first. */
  async publish(conn) {
    const frame = () => ({ type: "keys.publish", version: this.version, public_key: this.publicKey });
    try {
      await conn.request(frame());
    } catch (error) {
      if (error.code !== "invalid" || !/stale key version/.test(error.message)) throw error;
      const answer = await conn.request({ type: "keys.fetch", users: [this.user] });
      const mine = answer.users.flatMap((u) => u.devices).filter((d) => d.device === this.device);
      const top = Math.max(0, ...mine.map((d) => d.version));
      this.pairs.set(top + 1, this.pairs.get(this.version));
      await this.save();
      await conn.request(frame());
    }
  }

  /** The envelope of `text` for `chat`, or null when a member has no device key. */
  async sealFor(conn, chat, text) {
    let users = this.chatKeys.get(chat);
    if (!users) {
      const changes = this.changes;
      users = (await conn.request({ type: "keys.fetch", chat })).users;
      if (users.some((u) => u.devices.length === 0)) return null;
      // An answer that overlapped a push may predate it: use it once, do not keep it.
      if (changes === this.changes) this.chatKeys.set(chat, users);
      if (this.chatKeys.size > 256) this.chatKeys.delete(this.chatKeys.keys().next().value);
    }
    const recipients = users.flatMap((u) =>
      u.devices.map((d) => ({ user: u.user, ...d })),
    );
    return seal(text, { chat, sender: this.user, senderDevice: this.device, recipients });
  }

  /** Add `text` (or `undecryptable`) to each encrypted message frame of `messages`. */
  async reveal(messages) {
    for (const m of messages) {
      if (!m.encrypted || m.text !== undefined) continue;
      try {
        m.text = await unseal(m.body, { chat: m.chat, sender: m.sender, user: this.user, ring: this });
      } catch (error) {
        m.text = null;
        m.undecryptable = String(error?.message ?? error);
      }
    }
  }
}
