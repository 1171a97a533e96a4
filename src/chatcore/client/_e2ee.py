"""End-to-end encryption in the SDK: the device's keyring, sealing sends, opening messages.

The scheme is :mod:`chatcore.e2ee.scheme` (docs/encryption.md); this module only ties it
to the wire: ``keys.publish`` when a session opens, ``keys.fetch {chat}`` before the
first encrypted send to a chat, and opening each encrypted message delivered. Needs
the ``e2ee`` extra, imported only when a client is given a keyring.

The keys fetched for a chat are kept until something may have made them stale: a
``keys.changed`` push naming one of the chat's members (a rotated, new or revoked
device key), a ``chat`` push for the chat (its members changed), or a new session
(pushes may have been missed). A fetch that overlapped such a push is used once, not
kept, since its answer may predate the change; nor is one that found a member
without any key (the send is refused, and the next try fetches again).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from chatcore.client._errors import expect_frame
from chatcore.client._events import MessageReceived
from chatcore.errors import ChatcoreError, InvalidRequest
from chatcore.keys import DeviceKey
from chatcore.protocol import (
    ClientFrame,
    KeysFetch,
    KeysFrame,
    KeysPublish,
    Message,
    Ok,
    ServerFrame,
)

if TYPE_CHECKING:
    from chatcore.e2ee.scheme import DeviceKeyring

__all__ = ["EndToEnd"]

Ask = Callable[[Callable[[int], ClientFrame]], Awaitable[ServerFrame]]

MAX_CACHED_CHATS = 256
"""Chats whose device keys are kept at once (the least recently fetched go first)."""


class EndToEnd:
    """One device's end-to-end state: its keyring (kept in ``path``) and its user."""

    def __init__(self, path: str | Path, device: str) -> None:
        """Load the keyring at ``path``, or make one and save it there; raises
        InvalidRequest for a file that is not a keyring or belongs to another device."""
        from chatcore.e2ee import scheme

        self._scheme = scheme
        self.path = Path(path)
        if self.path.exists():
            self.keyring: DeviceKeyring = scheme.DeviceKeyring.load(self.path)
            if self.keyring.device != device:
                raise InvalidRequest(
                    f"the keyring {self.path} is device {self.keyring.device!r}'s, not {device!r}"
                )
        else:
            self.keyring = scheme.DeviceKeyring.generate(device)
            self.keyring.save(self.path)
        self._chat_keys: dict[str, dict[str, list[DeviceKey]]] = {}
        self._changes = 0  # pushes that may have made keys stale, so far

    async def publish(self, ask: Ask, user: str) -> None:
        """Publish the current key. A directory holding a newer version of this device
        (its keyring was lost and made again) makes the key move above it first."""
        ring = self.keyring
        try:
            await self._publish(ask)
        except InvalidRequest as exc:
            if "stale key version" not in exc.message:
                raise
            found = await self._keys(ask, KeysFetch(id=0, users=[user]))
            theirs = [k.version for k in found.get(user, []) if k.device == ring.device]
            top = max(theirs, default=0)
            ring.pairs[top + 1] = ring.pairs[ring.version]
            ring.save(self.path)
            await self._publish(ask)

    async def rotate(self, ask: Ask) -> int:
        """Make a new key pair one version up, keep it and publish it; its version."""
        version = self.keyring.rotate()
        self.keyring.save(self.path)
        await self._publish(ask)
        return version

    async def seal(self, ask: Ask, *, chat: str, user: str, text: str) -> str:
        """The envelope of ``text`` for every device key of ``chat``'s members.

        Raises InvalidRequest naming the members who have no key (nothing is sent),
        and the server's errors (NotMember, ...).
        """
        keys = self._chat_keys.get(chat)
        if keys is None:
            changes = self._changes
            keys = await self._keys(ask, KeysFetch(id=0, chat=chat))
            keyless = sorted(u for u, devices in keys.items() if not devices and u != user)
            if keyless:  # not kept: the next try fetches again
                raise InvalidRequest(f"cannot encrypt: no device key for {keyless}")
            if changes == self._changes:  # else a push overlapped: the answer may be stale
                self._keep(chat, keys)
        devices = [k for found in keys.values() for k in found]
        return self._scheme.encrypt(
            text, chat=chat, sender=user, sender_device=self.keyring.device, recipients=devices
        )

    def _keep(self, chat: str, keys: dict[str, list[DeviceKey]]) -> None:
        self._chat_keys[chat] = keys
        while len(self._chat_keys) > MAX_CACHED_CHATS:
            del self._chat_keys[next(iter(self._chat_keys))]

    def user_keys_changed(self, user: str) -> None:
        """Drop the kept keys of every chat ``user`` is in (a ``keys.changed`` push)."""
        self._changes += 1
        for chat in [c for c, keys in self._chat_keys.items() if user in keys]:
            del self._chat_keys[chat]

    def chat_changed(self, chat: str) -> None:
        """Drop the kept keys of ``chat`` (its members may have changed)."""
        self._changes += 1
        self._chat_keys.pop(chat, None)

    def session_opened(self) -> None:
        """Drop every kept key: pushes may have been missed while disconnected."""
        self._changes += 1
        self._chat_keys.clear()

    def open(self, message: Message, user: str | None) -> MessageReceived:
        """The event for ``message``: with its text if it is encrypted and opens here."""
        if not message.encrypted or user is None:
            return MessageReceived(message)
        try:
            text = self._scheme.decrypt(
                message.body,
                chat=message.chat,
                sender=message.sender,
                user=user,
                keyring=self.keyring,
            )
        except ChatcoreError as exc:
            return MessageReceived(message, undecryptable=exc.message)
        return MessageReceived(message, text=text)

    async def _publish(self, ask: Ask) -> None:
        ring = self.keyring
        frame = await ask(
            lambda rid: KeysPublish(id=rid, version=ring.version, public_key=ring.public_key)
        )
        expect_frame(frame, Ok)

    async def _keys(self, ask: Ask, fetch: KeysFetch) -> dict[str, list[DeviceKey]]:
        """The device keys of each user the answer names (maybe none)."""
        answer = expect_frame(
            await ask(lambda rid: KeysFetch(id=rid, users=fetch.users, chat=fetch.chat)),
            KeysFrame,
        )
        return {
            e.user: [DeviceKey(e.user, d.device, d.version, d.public_key) for d in e.devices]
            for e in answer.users
        }
