"""Learning waiting to be written: the users layer's write-behind queue (no I/O here).

A message's learning joins the open batch of its user, generation and store version: the
version it was taken at decides which suppressed words it may bring back (store.py), so
learning from before a Forget(word) and from after it never share a batch, and a word sent
again after its removal is learned. At each flush the open batches are sealed, each with an
id of its own, and written oldest first; a batch the store did not take stays sealed and is
retried with the same id, which the store applies once however often it arrives.

Bounds: at most `per_user` entries of one user and `total` of everyone wait; beyond, the
user is told BUSY, and stays BUSY unread until the next flush (reading a refused message
cost more than the refusal itself: a user sending long messages nonstop slowed others).
"""
from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field

from service.server.users.store import Entries


@dataclass(eq=False)  # a batch is itself: found by identity, not by its counts
class Batch:
    """Learning of one user, taken in one generation at one store version, written as one."""
    user: str
    generation: int
    since: int                                             # the store version it was taken at
    added: Counter = field(default_factory=Counter)        # entry -> count
    seen: dict[str, float] = field(default_factory=dict)   # entry -> when it was last learned
    messages: int = 0
    id: str = ""                                           # given when sealed; a retry keeps it

    def entries(self) -> Entries:
        return {entry: (count, self.seen[entry]) for entry, count in self.added.items()}


class WriteQueue:
    def __init__(self, per_user: int, total: int):
        self.per_user, self.total = per_user, total
        self.open: dict[tuple[str, int, int], Batch] = {}
        self.sealed: list[Batch] = []        # oldest first; the first is the one being written
        self.waiting: Counter[str] = Counter()  # entries open or sealed, per user
        self.full: set[str] = set()          # users told BUSY since the last flush

    def __bool__(self) -> bool:
        return bool(self.open or self.sealed)

    def refuses(self, user: str) -> bool:
        """Told BUSY since the last flush, or at the bound already: BUSY before any work."""
        return user in self.full or self.waiting[user] >= self.per_user

    def room(self, user: str, entries: int) -> bool:
        """Whether `entries` more fit; if not, the user is BUSY until the next flush."""
        if self.waiting[user] + entries > self.per_user or self.waiting.total() + entries > self.total:
            self.full.add(user)
            return False
        return True

    def add(self, user: str, generation: int, since: int, entries: dict[str, int], now: float) -> None:
        batch = self.open.setdefault((user, generation, since), Batch(user, generation, since))
        batch.added.update(entries)
        batch.seen.update(dict.fromkeys(entries, now))
        batch.messages += 1
        self.waiting[user] += len(entries)

    def seal(self) -> None:
        """The open batches join the ones to write (a flush begins); BUSY users may try again."""
        for batch in self.open.values():
            batch.id = uuid.uuid4().hex
            self.sealed.append(batch)
        self.open.clear()
        self.full.clear()

    def written(self, batch: Batch) -> None:
        """The store took the batch (or refused it for good: its user was forgotten since)."""
        if batch in self.sealed:  # (a Forget may have dropped it while it was being written)
            self.sealed.remove(batch)
            self._release(batch)

    def of(self, user: str, generation: int) -> list[Batch]:
        """The user's learning in a generation not yet written (sealed first, as it will be written)."""
        return [b for b in (*self.sealed, *self.open.values()) if b.user == user and b.generation == generation]

    def forget(self, user: str, generation: int) -> int:
        """Drop the user's learning of generations before `generation` (a Forget here made it);
        returns the messages dropped."""
        gone = [b for b in (*self.sealed, *self.open.values()) if b.user == user and b.generation < generation]
        for batch in gone:
            if batch.id:
                self.sealed.remove(batch)
            else:
                del self.open[(batch.user, batch.generation, batch.since)]
            self._release(batch)
        return sum(b.messages for b in gone)

    def messages(self) -> int:
        return sum(b.messages for b in (*self.sealed, *self.open.values()))

    def _release(self, batch: Batch) -> None:
        self.waiting[batch.user] -= len(batch.added)
        if self.waiting[batch.user] <= 0:
            del self.waiting[batch.user]
