"""The user store's contract: what SQLite (sqlite.py, the default, a file) and Redis (redis.py,
shared by replicas) both keep and promise, and the types both use.

Both keep the same things per user, named by a digest of the user (service/server/security.py),
never by the key: entries (model/engine/personal.py) with a count and the time last seen, the
words the user asked never to be suggested (`suppressed`), and two numbers:

- `version`, bumped by every change, so a process holding the user's model in memory sees
  another process's learning and forgetting;
- `generation`, bumped by every Forget and never going back (the user's row stays behind
  as a tombstone, holding no learned data, for at least TOMBSTONE_DAYS). Every write names
  the generation its learning was taken in, and the store refuses it when the user was
  forgotten since: no learning begun before a Forget lands after it.

Likewise a word forgotten alone is suppressed at a version, and a write names the version
its learning was taken at: entries holding a word suppressed after that are not written, so
only a message sent after the word was forgotten brings it back (and lifts the suppression).

Writes add to counts, so processes learning the same user at once all count, and the bound
on entries per user is enforced here, where all processes meet (the oldest day's rarest
entries go first, down to 90% of the bound). After a Forget the SQLite file and its WAL hold
nothing of the user: deleted content is zeroed (secure_delete) and the WAL is checkpointed
and truncated before Forget returns.

The calls block. The users layer (layer.py) runs reads (load, stamp) on one thread and writes on
another, so that a keystroke waiting for a user's model never queues behind a big write;
each thread has its own SQLite connection.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

Entries = dict[str, tuple[int, float]]  # entry -> (count, last seen, unix time); also what a write adds
KEEP = 0.9             # after pruning, a user keeps this share of the bound
TOMBSTONE_DAYS = 1.0   # a forgotten user's generation is kept at least this long


class StoreDown(Exception):
    """The store did not answer (Redis unreachable, SQLite file unusable)."""


@dataclass
class Snapshot:
    """Everything the store holds for one user, read at one instant."""
    entries: Entries
    suppressed: set[str]
    generation: int
    version: int


@dataclass
class Written:
    """What a write did: `kept` False when the user was forgotten since its generation;
    `pruned` entries went for the bound; `suppression` True when suppressed words changed it
    (a suppression lifted, or entries left out)."""
    kept: bool
    version: int
    pruned: int = 0
    suppression: bool = False


def prune_order(entries: Entries) -> list[str]:
    """Entries in the order they go when a user is over the bound: oldest day first, then
    the rarer, then the older (the order the stores' own queries use)."""
    return sorted(entries, key=lambda e: (int(entries[e][1] // 86400), entries[e][0], entries[e][1]))


def mentions(entry: str, word: str) -> bool:
    """Does an entry hold a word (lower-cased): the word as sent, or a token of a pair?"""
    return word in entry.lower().split(" ")


def unsuppressed(added: Entries, suppressed: dict[str, int], since: int) -> tuple[Entries, list[str]]:
    """(the learning a write keeps, the suppressions it lifts), for learning taken at version
    `since` against words suppressed at their versions: entries holding a word suppressed
    after `since` go; a word sent after its suppression lifts it."""
    if not suppressed:
        return added, []
    later = [w for w, at in suppressed.items() if at > since]
    kept = {e: c for e, c in added.items() if not any(mentions(e, w) for w in later)}
    return kept, [e.lower() for e in kept if " " not in e and e.lower() in suppressed]


@contextlib.contextmanager
def down(name: str, errors: tuple):
    """Turns the store's own errors into StoreDown (its type only: no user data in it)."""
    try:
        yield
    except errors as error:
        raise StoreDown(f"{name}: {type(error).__name__}") from None
