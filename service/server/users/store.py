"""The user store's contract: what SQLite (sqlite.py, the default, a file) and Redis (redis.py,
shared by replicas) both keep and promise, the rules both apply, and the types both use.

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

The rules both stores apply, stated here once:
- Writes add to counts, so processes learning the same user at once all count; a count
  saturates at MAX_COUNT (model/engine/personal.py), so no import or flood overflows it.
- A write carries an id; a write whose id the store has applied already (a retry after a
  timeout that did land) is not applied again: no double counts.
- The bound on entries per user is enforced in the store, where all processes meet: over
  it, entries go in `prune_key` order (the oldest day first, then the rarest, then the
  older, then by spelling) down to KEEP of the bound; Redis takes them in steps of at most PRUNE_STEP,
  so no single command runs long.
- A Forget deletes at once; `Forgotten.wiped` says whether no file holds the data any more
  (SQLite: deleted content is zeroed by secure_delete and the write-ahead log truncated;
  a reader of another program can hold the log, and the store truncates it at the next
  `wipe()` its readers allow).

The calls block. The users layer (layer.py) runs reads (load, stamp) on one thread and writes on
another, so that a keystroke waiting for a user's model never queues behind a big write;
each thread has its own SQLite connection.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

from model.engine.personal import MAX_COUNT

Entries = dict[str, tuple[int, float]]  # entry -> (count, last seen, unix time); also what a write adds
KEEP = 0.9             # after pruning, a user keeps this share of the bound
PRUNE_STEP = 2000      # entries one Redis command prunes at most
DAY = 86400
COUNT_BITS = 8             # prune_score packs this much of a count: above COUNT_CAP all are "frequent" to pruning
COUNT_CAP = (1 << COUNT_BITS) - 1
TICKS = 2048               # prune_score tells times apart to 1/TICKS of a second (a power of two: seen * TICKS is exact)
TIME_BITS = 28             # a tick of the day fits in 28 bits; 16 bits of days are left, to the year 2149
TOMBSTONE_DAYS = 1.0   # a forgotten user's generation is kept at least this long
WRITES_KEPT = 3600.0   # seconds a write's id is remembered (a retry comes within seconds)

class StoreDown(Exception):
    """The store did not answer (Redis unreachable, SQLite file unusable or its disk full)."""


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
    (a suppression lifted, or entries left out); `repeated` True when its id was applied before."""
    kept: bool
    version: int
    pruned: int = 0
    suppression: bool = False
    repeated: bool = False


@dataclass
class Forgotten:
    """What a Forget did: the user's generation after it, the entries that went, and whether
    no file of the store holds them any more (see the module doc)."""
    generation: int
    entries: int
    wiped: bool


def saturated(count: int) -> int:
    return min(count, MAX_COUNT)


def prune_key(entry: str, count: int, seen: float) -> tuple[int, str]:
    """The order entries go in when a user is over the bound: the oldest day first, then the
    rarest (counts up to COUNT_CAP), then the older (to 1/TICKS s), then by spelling (code
    points: the byte order of UTF-8, as Redis orders equal scores)."""
    return prune_score(count, seen), entry


def prune_score(count: int, seen: float) -> int:
    """Day, capped count and tick of the day as one number: a Redis sorted-set score, exact in
    a double (16 + COUNT_BITS + TIME_BITS = 52 bits). The Lua of redis.py and the SQL of
    sqlite.py compute the same (`score_sql`)."""
    tick = int(seen * TICKS)
    return (((tick // (DAY * TICKS)) << COUNT_BITS) + min(count, COUNT_CAP) << TIME_BITS) + tick % (DAY * TICKS)


def score_sql(count: str, seen: str) -> str:
    """prune_score as an SQL expression (CAST truncates: the same as flooring, times being positive)."""
    tick = f"CAST({seen} * {TICKS} AS INTEGER)"
    return f"((({tick} / {DAY * TICKS}) << {COUNT_BITS}) + min({count}, {COUNT_CAP})) << {TIME_BITS} | {tick} % {DAY * TICKS}"


def score_lua(count: str, seen: str) -> str:
    """prune_score as a Lua expression (doubles: exact below 2^53)."""
    tick = f"math.floor({seen} * {TICKS})"
    return (f"(math.floor({tick} / {DAY * TICKS}) * {1 << COUNT_BITS} + math.min({count}, {COUNT_CAP})) * {1 << TIME_BITS}"
            f" + {tick} % {DAY * TICKS}")


def prune_count(size: int, most: int) -> int:
    """How many entries go when a user holds `size` against the bound `most`."""
    return size - int(most * KEEP) if size > most else 0


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
    except errors as error:  # its type, and SQLite's error name ("SQLITE_FULL"): never a message with data
        code = getattr(error, "sqlite_errorname", "")
        raise StoreDown(f"{name}: {type(error).__name__}{' ' + code if code else ''}") from None
