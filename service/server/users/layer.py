"""Users' models for the service: the store (store.py) behind a cache, learning written behind.

The promises (README, "Personal suggestions"), and how they are kept:

- Acknowledged means kept. A sent message is counted into `pending`, a table of its own
  apart from the cache of models (evicting a model never loses learning), and written every
  FLUSH_EVERY seconds and on drain. Its answer is LEARNED only once it is there; when it
  cannot be kept it says why (STORE_DOWN, BUSY) and nextword_user_messages_dropped_total
  counts it under that reason. After kill -9 at most the last FLUSH_EVERY seconds (and one
  write in flight) are lost.
- Forget is final. Learning is taken in the user's generation read from the store when the
  message came; the store refuses a write whose generation a Forget has since bumped, so
  nothing begun before a Forget lands after it. A cached model serves a keystroke only if
  it was checked against the store in the last REFRESH_EVERY seconds; otherwise the
  keystroke waits (at most LOAD_WAIT) for the check, or goes on without personalization.
  So a second after a Forget no process shows anything forgotten. A Forget that fails
  changes nothing here.
- A keystroke never fails because of the store and never waits for it longer than LOAD_WAIT.
- Fair. A user has at most MAX_PENDING_USER entries waiting, everyone MAX_PENDING; beyond,
  BUSY, and that user's messages are BUSY unread until the next write (reading a refused
  message cost more than the refusal: a user sending 8 KB nonstop slowed others' keystrokes
  tenfold). Reads (a keystroke's user) and writes run on threads of their own, so a
  keystroke never queues behind a big write.

Time comes from `clock` (tests pass a fake one). Logs and metrics say when the store is down
or back, and why learning was dropped; never a user, a key or a word.
"""
from __future__ import annotations

import asyncio
import enum
import logging
import math
import time
from collections import Counter, OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from model.engine.personal import UserModel, message_entries
from service.server.errors import Unavailable
from service.server.users.store import Snapshot, StoreDown

log = logging.getLogger("nextword.users")

LOAD_WAIT = 0.5            # seconds a keystroke or a Learn waits for the store
FLUSH_EVERY = 0.5          # seconds between writes of what was learned
REFRESH_EVERY = 1.0        # seconds a cached model serves before it is checked against the store again
RETRY_EVERY = 1.0          # seconds after the store failed before a keystroke asks it again
EXPIRE_EVERY = 3600.0      # seconds between sweeps for expired users (at most)
MAX_PENDING_USER = 10_000  # entries waiting to be written for one user, at most
MAX_PENDING = 200_000      # entries waiting to be written for everyone, at most
FORGOTTEN_KEPT = 10_000    # users whose latest local Forget is remembered (to refuse loads begun before it)


class Outcome(enum.Enum):
    """What became of a sent message."""
    LEARNED = "learned"
    NOTHING_TO_LEARN = "nothing to learn"
    STORE_DOWN = "store_down"
    BUSY = "busy"
    INCOGNITO = "incognito"


@dataclass(frozen=True)
class Learned:
    words: int        # words counted from the message (0 unless LEARNED)
    outcome: Outcome


class Clock:
    """Time as the users layer sees it."""

    monotonic = staticmethod(time.monotonic)
    now = staticmethod(time.time)
    sleep = staticmethod(asyncio.sleep)


@dataclass
class Cached:
    model: UserModel
    generation: int
    version: int
    checked: float  # monotonic time it was last found current in the store


@dataclass
class Pending:
    """Learning of one user in one generation, not yet written."""
    since_version: int                   # the oldest store version it was learned at
    added: Counter = field(default_factory=Counter)
    seen: dict[str, float] = field(default_factory=dict)  # entry -> when it was last learned
    messages: int = 0

    def take(self, other: "Pending") -> None:
        self.since_version = min(self.since_version, other.since_version)
        self.added.update(other.added)
        for entry, when in other.seen.items():
            self.seen[entry] = max(when, self.seen.get(entry, when))
        self.messages += other.messages

    def entries(self) -> dict[str, tuple[int, float]]:
        return {entry: (count, self.seen[entry]) for entry, count in self.added.items()}


class Users:
    def __init__(self, store, metrics, max_users: int, max_entries: int, clock: Clock | None = None):
        self.store, self.metrics, self.clock = store, metrics, clock or Clock()
        self.max_users, self.max_entries = max_users, max_entries
        self.cache: OrderedDict[str, Cached] = OrderedDict()
        self.pending: dict[tuple[str, int], Pending] = {}   # (user, generation) -> learning to write
        self.writing: dict[tuple[str, int], Pending] = {}   # ... being written now
        self.waiting: Counter[str] = Counter()              # entries pending or being written, per user
        self.full: set[str] = set()                         # users told BUSY since the last write
        self.checks: dict[str, asyncio.Future] = {}          # one check or load per user at a time
        self.forgotten: OrderedDict[str, int] = OrderedDict()  # user -> generation after our last Forget
        self.reader = ThreadPoolExecutor(1, thread_name_prefix="user-store-read")
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="user-store-write")
        self.up = True
        self.failed_at = -math.inf  # monotonic time of the store's last failure
        self.metrics.store_up.set(1)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _call(self, operation: str, thread: ThreadPoolExecutor, fn, *args):
        """Run a store call on its thread; StoreDown is counted, logged once, raised."""
        try:
            result = await asyncio.get_running_loop().run_in_executor(thread, fn, *args)
        except StoreDown as e:
            self.metrics.store_errors.labels(operation).inc()
            self.failed_at = self.clock.monotonic()
            if self.up:
                self.up = False
                self.metrics.store_up.set(0)
                log.warning("user store unreachable (%s): suggestions go on without personalization", e)
            raise
        if not self.up:
            self.up = True
            self.metrics.store_up.set(1)
            log.info("user store answers again")
        return result

    # ---- a keystroke's model -------------------------------------------------------------

    async def model(self, user: str) -> UserModel | None:
        """The user's model for a keystroke, checked against the store within REFRESH_EVERY;
        None while that cannot be had within LOAD_WAIT (no personalization, no error)."""
        cached = self.cache.get(user)
        if cached is not None and self.clock.monotonic() - cached.checked <= REFRESH_EVERY:
            self.cache.move_to_end(user)
            return cached.model
        if not self.up and self.clock.monotonic() - self.failed_at < RETRY_EVERY:
            return None  # the store just failed: keystrokes do not wait for it again at once
        try:
            cached = await asyncio.wait_for(asyncio.shield(self._current(user)), LOAD_WAIT)
        except (StoreDown, asyncio.TimeoutError):
            return None
        return cached.model if cached else None

    def _current(self, user: str) -> asyncio.Future:
        """The user's check (or load): one at a time per user, however many calls wait on it
        (each behind asyncio.shield, so a caller that gives up does not cancel it)."""
        check = self.checks.get(user)
        if check is None:
            check = self.checks[user] = asyncio.ensure_future(self._check(user))
            check.add_done_callback(lambda done: self._checked(user, done))
        return check

    def _checked(self, user: str, done: asyncio.Future) -> None:
        self.checks.pop(user, None)
        if not done.cancelled():
            done.exception()  # seen, so asyncio does not log it again: _call counted and logged it

    async def _check(self, user: str) -> Cached | None:
        cached = self.cache.get(user)
        if cached is not None:
            stamp = await self._call("check", self.reader, self.store.stamp, user)
            if stamp == (cached.generation, cached.version) and self.cache.get(user) is cached:
                cached.checked = self.clock.monotonic()
                self.cache.move_to_end(user)
                return cached
        model, generation, version = await self._call("load", self.reader, self._read, user)
        if generation < self.forgotten.get(user, 0):
            return None  # read before a Forget this process has made since
        suppressed = set(model.suppressed)
        for part in (self.writing.get((user, generation)), self.pending.get((user, generation))):
            for entry, (count, seen) in (part.entries().items() if part else ()):  # ours, not in the store yet
                model.add(entry, count, seen)
        model.suppressed |= suppressed  # whether that learning lifts a suppression, its write decides
        cached = self.cache[user] = Cached(model, generation, version, self.clock.monotonic())
        self.cache.move_to_end(user)
        while len(self.cache) > self.max_users:  # least recently used first; learning is in `pending`
            self.cache.popitem(last=False)
        self.metrics.users_cached.set(len(self.cache))
        return cached

    def _read(self, user: str) -> tuple[UserModel, int, int]:
        """On the reader thread: the user's snapshot built into a model (tens of ms for a big
        user: not on the event loop)."""
        snapshot = self.store.load(user)
        return UserModel(snapshot.entries, snapshot.suppressed), snapshot.generation, snapshot.version

    # ---- learning -------------------------------------------------------------------------

    async def learn(self, user: str, message: str) -> Learned:
        """Count a sent message for the user (see the module doc for what the answer promises)."""
        if user in self.full or self.waiting[user] >= MAX_PENDING_USER:  # before any work
            return self._dropped(Outcome.BUSY)
        return await self.add(user, message_entries(message))

    async def add(self, user: str, entries: dict[str, int]) -> Learned:
        """Count entries for the user: a sent message's, or words imported."""
        words = sum(count for entry, count in entries.items() if " " not in entry)
        if not words:
            return Learned(0, Outcome.NOTHING_TO_LEARN)
        if self.waiting[user] + len(entries) > MAX_PENDING_USER or self.waiting.total() + len(entries) > MAX_PENDING:
            self.full.add(user)
            return self._dropped(Outcome.BUSY)
        try:
            generation, version = await asyncio.wait_for(
                asyncio.shield(self._call("learn", self.reader, self.store.stamp, user)), LOAD_WAIT)
        except StoreDown:
            return self._dropped(Outcome.STORE_DOWN)
        except asyncio.TimeoutError:
            return self._dropped(Outcome.BUSY)
        now = self.clock.now()
        self._add(user, generation, Pending(version, Counter(entries), dict.fromkeys(entries, now), 1))
        self.metrics.learned.inc()
        return Learned(words, Outcome.LEARNED)

    def _add(self, user: str, generation: int, learning: Pending) -> None:
        """Learning taken in `generation`: pending, and in the cached model if that is the same generation."""
        pending = self.pending.get((user, generation))
        if pending is None:
            self.pending[(user, generation)] = learning
        else:
            pending.take(learning)
        self.waiting[user] += len(learning.added)
        cached = self.cache.get(user)
        if cached is not None and cached.generation == generation:
            for entry, (count, seen) in learning.entries().items():
                cached.model.add(entry, count, seen)
        elif cached is not None:
            cached.checked = -math.inf  # forgotten elsewhere: read it again at the next keystroke

    def _dropped(self, outcome: Outcome, messages: int = 1) -> Learned:
        self.metrics.learn_dropped.labels(outcome.value).inc(messages)
        return Learned(0, outcome)

    async def flush(self) -> None:
        """Write what was learned, user by user; what the store cannot take now stays pending."""
        self.full.clear()  # those told BUSY may try again (at most one message each per write)
        for key in list(self.pending):
            if key in self.pending and not await self._write(key):
                return

    async def _write(self, key: tuple[str, int]) -> bool:
        """Write one user's pending learning; False (and still pending) when the store is down."""
        pending = self.writing[key] = self.pending.pop(key)
        user, generation = key
        try:
            written = await self._call("write", self.writer, self.store.write, user, generation, pending.since_version,
                                       pending.entries(), self.max_entries)
        except StoreDown:
            del self.writing[key]
            if key in self.pending:  # learned meanwhile: keep both
                pending.take(self.pending[key])
            self.pending[key] = pending
            return False
        del self.writing[key]
        self.waiting[user] -= len(pending.added)
        if self.waiting[user] <= 0:
            del self.waiting[user]
        if not written.kept:  # the user was forgotten since this was learned
            self.metrics.learn_dropped.labels("forgotten").inc(pending.messages)
            return True
        cached = self.cache.get(user)
        if cached is not None and cached.generation == generation:
            if written.version == cached.version + 1 and not written.pruned and not written.suppression:
                cached.version = written.version  # our write was the only change: the model is current
            else:
                cached.checked = -math.inf
        return True

    async def export(self, user: str) -> Snapshot:
        """Everything the store holds for the user, this process's learning written first;
        Unavailable when the store cannot be reached."""
        try:
            for key in [k for k in self.pending if k[0] == user]:
                if not await self._write(key):
                    raise StoreDown("write")
            return await self._call("load", self.reader, self.store.load, user)
        except StoreDown:
            raise Unavailable("the user store is unreachable; try again") from None

    # ---- forgetting -----------------------------------------------------------------------

    async def forget(self, user: str) -> None:
        """Delete everything of the user in the store, then here; Unavailable (nothing
        forgotten, nothing lost) when the store cannot be reached."""
        try:
            generation = await self._call("forget", self.writer, self.store.forget, user)
        except StoreDown:
            raise Unavailable("the user store is unreachable: nothing was forgotten; try again") from None
        self.forgotten[user] = generation
        self.forgotten.move_to_end(user)
        while len(self.forgotten) > FORGOTTEN_KEPT:
            self.forgotten.popitem(last=False)
        self.cache.pop(user, None)
        self.metrics.users_cached.set(len(self.cache))
        for key in [k for k in self.pending if k[0] == user and k[1] < generation]:
            gone = self.pending.pop(key)
            self.waiting[user] -= len(gone.added)
            self.metrics.learn_dropped.labels("forgotten").inc(gone.messages)

    async def forget_word(self, user: str, word: str) -> int:
        """Delete every entry of the user holding the word, and suppress the word for them until
        they send it again (store.py); returns how many entries went. Unavailable as forget."""
        try:
            gone = await self._call("forget", self.writer, self.store.forget_word, user, word.lower())
        except StoreDown:
            raise Unavailable("the user store is unreachable: nothing was forgotten; try again") from None
        cached = self.cache.get(user)
        if cached is not None:
            cached.checked = -math.inf  # read again, suppression included, at the next keystroke
        return gone

    # ---- upkeep ---------------------------------------------------------------------------

    async def _run(self) -> None:
        every = min(EXPIRE_EVERY, max(self.store.ttl / 4, 1.0))  # a short time to live is kept closely too
        last_expiry = -every
        while True:
            await self.clock.sleep(FLUSH_EVERY)
            await self.flush()
            if self.clock.monotonic() - last_expiry > every:
                last_expiry = self.clock.monotonic()
                try:
                    gone = await self._call("expire", self.writer, self.store.expire)
                    if gone:
                        log.info("expired %d users unseen for the time to live", gone)
                except StoreDown:
                    pass

    async def close(self) -> None:
        """On drain: stop, write what is pending (a few tries), close the store."""
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for _ in range(3):
            await self.flush()
            if not self.pending:
                break
        if self.pending:
            messages = sum(p.messages for p in self.pending.values())
            self.metrics.learn_dropped.labels("shutdown").inc(messages)
            log.warning("user store unreachable at shutdown: %d learned messages not written", messages)
        self.reader.shutdown()
        await asyncio.get_running_loop().run_in_executor(self.writer, self.store.close)
        self.writer.shutdown()
