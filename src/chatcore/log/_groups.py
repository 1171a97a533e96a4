"""In-process consumer-group coordination shared by the embedded log backends.

Pure bookkeeping, no I/O: which live member owns which partition. Partitions are
spread round-robin over members in join order; every join or leave bumps the
group's generation and recomputes the assignment. Each partition also has an
*epoch*, bumped whenever its owner changes. Each member learns of the change at its
next poll (as ``assigned`` / ``revoked``), and a commit for a partition it no longer
owns is refused, which fences a stale member. The commit names the epochs the member
last saw: a member that lost a partition and got it back between two polls (its
in-memory state is stale, others wrote in between) is fenced too.

Embedded backends coordinate members of one process only.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

__all__ = ["GroupCoordinator"]


@dataclass
class _Group:
    partitions: int
    members: list[int] = field(default_factory=list)
    owner: dict[int, int] = field(default_factory=dict)  # partition -> member id
    epoch: dict[int, int] = field(default_factory=dict)  # partition -> owner changes
    generation: int = 0

    def rebalance(self) -> None:
        self.generation += 1
        before = self.owner
        self.owner = (
            {p: self.members[p % len(self.members)] for p in range(self.partitions)}
            if self.members
            else {}
        )
        for p in range(self.partitions):
            if before.get(p) != self.owner.get(p):
                self.epoch[p] = self.epoch.get(p, 0) + 1


class GroupCoordinator:
    """Tracks members and partition owners of every (group, topic)."""

    def __init__(self) -> None:
        self._groups: dict[tuple[str, str], _Group] = {}
        self._ids = itertools.count(1)

    def join(self, group: str, topic: str, partitions: int) -> int:
        """Add a member; returns its id."""
        g = self._groups.setdefault((group, topic), _Group(partitions))
        member = next(self._ids)
        g.members.append(member)
        g.rebalance()
        return member

    def leave(self, group: str, topic: str, member: int) -> None:
        g = self._groups.get((group, topic))
        if g is not None and member in g.members:
            g.members.remove(member)
            g.rebalance()

    def assignment(self, group: str, topic: str, member: int) -> frozenset[int]:
        g = self._groups.get((group, topic))
        if g is None:
            return frozenset()
        return frozenset(p for p, m in g.owner.items() if m == member)

    def generation(self, group: str, topic: str) -> int:
        """Bumped by every join and leave of the group: nothing it owns changed while
        this stays the same."""
        g = self._groups.get((group, topic))
        return -1 if g is None else g.generation

    def held(self, group: str, topic: str, member: int) -> dict[int, int]:
        """The partitions ``member`` owns, each with its current epoch."""
        g = self._groups.get((group, topic))
        if g is None:
            return {}
        return {p: g.epoch.get(p, 0) for p, m in g.owner.items() if m == member}

    def owns_all(
        self,
        group: str,
        topic: str,
        member: int,
        partitions: set[int],
        epochs: dict[int, int] | None = None,
    ) -> bool:
        """Whether ``member`` owns every one of ``partitions`` (and, with ``epochs``, has
        owned each without a break since it saw that epoch)."""
        g = self._groups.get((group, topic))
        return g is not None and all(
            g.owner.get(p) == member and (epochs is None or epochs.get(p) == g.epoch.get(p, 0))
            for p in partitions
        )
