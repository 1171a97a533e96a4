"""What the senders were told, against what the store holds: the fault suite's accounting.

Pure rules, no I/O. A :class:`Ledger` records every send in the order each sender
issued it and how it ended (accepted with a ``message_id``, or failed); :func:`tally`
compares it with the rows read from the message store after the run and counts:

* ``acked_lost``: accepted, yet not stored;
* ``duplicated``: stored copies of one ``(chat, sender, client_msg_id)`` beyond the first;
* ``reordered``: accepted messages stored (by seq) before a message that the same
  sender accepted earlier in the same chat (one count per message out of place);
* ``wrong_id``: accepted messages whose stored ``message_id`` is not the acked one;
* ``unacked_stored`` / ``unacked_twice``: sends that never got ``accepted`` and are
  stored once (allowed: the ack was lost) / more than once (not allowed);
* ``unknown``: stored rows nobody sent (not allowed).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

__all__ = ["Ledger", "Row", "Tally", "tally"]

Key = tuple[str, str, str]
"""(chat, sender, client_msg_id)"""


@dataclass(frozen=True)
class Row:
    """One stored message, as the store returns it."""

    chat: str
    seq: int
    sender: str
    client_msg_id: str
    message_id: int


@dataclass
class _Send:
    order: int
    message_id: int | None = None
    error: str | None = None


@dataclass
class Ledger:
    """Every send and its outcome, in the order issued."""

    _sends: dict[Key, _Send] = field(default_factory=dict)
    _issued: int = 0

    def sent(self, chat: str, sender: str, client_msg_id: str) -> None:
        """Record a send before it goes out; raise ValueError for an id used twice."""
        key = (chat, sender, client_msg_id)
        if key in self._sends:
            raise ValueError(f"client_msg_id {client_msg_id!r} of {sender!r} sent twice")
        self._issued += 1
        self._sends[key] = _Send(self._issued)

    def acked(self, chat: str, sender: str, client_msg_id: str, message_id: int) -> None:
        """The server accepted the send with ``message_id``.

        Raise ValueError for an unknown send, or a second ack with another id.
        """
        send = self._get(chat, sender, client_msg_id)
        if send.message_id is not None and send.message_id != message_id:
            raise ValueError(
                f"{client_msg_id!r} acked as {send.message_id} and then as {message_id}"
            )
        send.message_id, send.error = message_id, None

    def failed(self, chat: str, sender: str, client_msg_id: str, error: str) -> None:
        """The send ended without an ack (an error answer, a timeout, a closed client)."""
        send = self._get(chat, sender, client_msg_id)
        if send.message_id is None:
            send.error = error

    def _get(self, chat: str, sender: str, client_msg_id: str) -> _Send:
        try:
            return self._sends[(chat, sender, client_msg_id)]
        except KeyError:
            raise ValueError(f"unknown send {client_msg_id!r} of {sender!r}") from None

    @property
    def sent_count(self) -> int:
        return len(self._sends)

    @property
    def acked_count(self) -> int:
        return sum(1 for s in self._sends.values() if s.message_id is not None)

    def message_id(self, chat: str, sender: str, client_msg_id: str) -> int | None:
        """The message_id the send was acked with (None: not acked)."""
        return self._get(chat, sender, client_msg_id).message_id

    def acked_keys(self) -> set[Key]:
        return {k for k, s in self._sends.items() if s.message_id is not None}

    def errors(self) -> Counter[str]:
        """How many sends ended without an ack, by error."""
        return Counter(s.error or "pending" for s in self._sends.values() if s.message_id is None)


@dataclass(frozen=True)
class Tally:
    """The comparison of a ledger with the store (see the module docstring)."""

    sent: int
    acked: int
    unacked: int
    stored: int
    acked_lost: int
    duplicated: int
    reordered: int
    wrong_id: int
    unacked_stored: int
    unacked_twice: int
    unknown: int

    @property
    def ok(self) -> bool:
        """No acked message lost, misnumbered or out of order; nothing stored twice."""
        return not (
            self.acked_lost
            or self.duplicated
            or self.reordered
            or self.wrong_id
            or self.unacked_twice
            or self.unknown
        )

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def tally(ledger: Ledger, rows: Iterable[Row]) -> Tally:
    """Count what the store holds against what the senders were told."""
    sends = ledger._sends
    copies: Counter[Key] = Counter()
    first: dict[Key, Row] = {}
    by_stream: dict[tuple[str, str], list[Row]] = defaultdict(list)
    stored = unknown = 0
    for row in sorted(rows, key=lambda r: (r.chat, r.seq)):
        stored += 1
        key = (row.chat, row.sender, row.client_msg_id)
        if key not in sends:
            unknown += 1
            continue
        copies[key] += 1
        if copies[key] == 1:
            first[key] = row
            by_stream[(row.chat, row.sender)].append(row)
    acked = [k for k, s in sends.items() if s.message_id is not None]
    acked_lost = sum(1 for k in acked if k not in copies)
    wrong_id = sum(1 for k in acked if k in first and first[k].message_id != sends[k].message_id)
    reordered = 0
    for (chat, sender), stream in by_stream.items():
        latest = 0
        for row in stream:
            send = sends[(chat, sender, row.client_msg_id)]
            if send.message_id is None:
                continue
            if send.order < latest:
                reordered += 1
            latest = max(latest, send.order)
    unacked = [k for k, s in sends.items() if s.message_id is None]
    return Tally(
        sent=len(sends),
        acked=len(acked),
        unacked=len(unacked),
        stored=stored,
        acked_lost=acked_lost,
        duplicated=sum(n - 1 for n in copies.values()),
        reordered=reordered,
        wrong_id=wrong_id,
        unacked_stored=sum(1 for k in unacked if copies[k] == 1),
        unacked_twice=sum(1 for k in unacked if copies[k] > 1),
        unknown=unknown,
    )
