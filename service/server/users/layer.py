"""Users' models for the service: the store (store.py) behind a cache of models, learning
written behind (writes.py).

The promises (README, "Personal suggestions"), and how they are kept:

- Acknowledged means written. A sent message is LEARNED only when its learning can be
  written: the store answered the user's generation, and the store's last write did not
  fail (after a failed write, a full disk included, learning is STORE_DOWN until a write or
  a probe succeeds). Its learning then waits in the write queue, apart from the cache of
  models (evicting a model never loses learning), and is written every FLUSH_EVERY seconds
  and on drain, where the layer keeps trying until the drain's time is up and then says
  how many messages answered LEARNED were lost. After kill -9 at most the last FLUSH_EVERY
  seconds (and one write in flight) are lost. A write the store took but did not confirm
  (a timeout) is retried under the same id and counted once.
- Forget is final. Learning is taken in the user's generation read from the store when the
  message came; the store refuses a write whose generation a Forget has since bumped, so
  nothing begun before a Forget lands after it. A cached model serves a keystroke only if
  it was checked against the store in the last REFRESH_EVERY seconds; otherwise the
  keystroke waits (at most LOAD_WAIT) for the check, or goes on without personalization.
  So a second after a Forget no process shows anything forgotten. A Forget that fails
  changes nothing here. A Forget whose deleted data SQLite's write-ahead log still holds
  (another program reads the file) says so, and the log is truncated as soon as it can be.
- A keystroke never fails because of the store and never waits for it longer than LOAD_WAIT.
- Fair: the write queue bounds what one user and everyone may have waiting (writes.py).
  Reads (a keystroke's user) and writes run on threads of their own, so a keystroke never
  queues behind a big write.

Time comes from `clock` (tests pass a fake one). Logs and metrics say when the store is down,
refuses writes, or is back, and why learning was dropped; never a user, a key or a word.
"""
from __future__ import annotations

import asyncio
import enum
import logging
import math
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cachetools import LRUCache

from model.engine.personal import UserModel, message_entries
from service.server.errors import Unavailable
from service.server.users.store import Forgotten, Snapshot, StoreDown
from service.server.users.writes import Batch, WriteQueue

log = logging.getLogger("nextword.users")

LOAD_WAIT = 0.5            # seconds a keystroke or a Learn waits for the store
FLUSH_EVERY = 0.5          # seconds between writes of what was learned
REFRESH_EVERY = 1.0        # seconds a cached model serves before it is checked against the store again
RETRY_EVERY = 1.0          # seconds after the store failed before a keystroke (or a probe) asks it again
EXPIRE_EVERY = 3600.0      # seconds between sweeps for expired users (at most)
MAX_PENDING_USER = 10_000  # entries waiting to be written for one user, at most
MAX_PENDING = 200_000      # entries waiting to be written for everyone, at most
FORGOTTEN_KEPT = 10_000    # users whose latest local Forget is remembered (to refuse loads begun before it)
WRITES = frozenset({"write", "probe", "forget", "wipe", "expire"})  # store operations that write


INLINE_CHARS = 512  # messages longer than this are cut into entries off the event loop (D10: an 8 KB one takes ~10 ms)


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


class Users:
    def __init__(self, store, metrics, max_users: int, max_entries: int, clock: Clock | None = None):
        self.store, self.metrics, self.clock = store, metrics, clock or Clock()
        self.max_entries = max_entries
        self.cache: LRUCache[str, Cached] = LRUCache(max_users)  # learning is in the queue, never only here
        self.queue = WriteQueue(MAX_PENDING_USER, MAX_PENDING)
        self.checks: dict[str, asyncio.Future] = {}          # one check or load per user at a time
        self.forgotten: LRUCache[str, int] = LRUCache(FORGOTTEN_KEPT)  # user -> generation after our last Forget
        self.reader = ThreadPoolExecutor(1, thread_name_prefix="user-store-read")
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="user-store-write")
        self.readable = self.writable = True
        self.failed_at = -math.inf  # monotonic time of the store's last failure
        self.unwiped = False        # a Forget's data still in SQLite's write-ahead log
        self.metrics.store_up.set(1)
        self.metrics.store_writable.set(1)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _call(self, operation: str, thread: ThreadPoolExecutor, fn, *args):
        """Run a store call on its thread; StoreDown is counted, raised, and logged when the
        store's state changes (reads, writes), not at every failure."""
        writes = operation in WRITES
        try:
            result = await asyncio.get_running_loop().run_in_executor(thread, fn, *args)
        except StoreDown as e:
            self.metrics.store_errors.labels(operation).inc()
            self.failed_at = self.clock.monotonic()
            self._state(writes, False, str(e))
            raise
        self._state(writes, True)
        return result

    def _state(self, writes: bool, works: bool, why: str = "") -> None:
        if writes and works != self.writable:
            self.writable = works
            log.warning("user store refuses writes (%s): learning answers STORE_DOWN until a write succeeds", why) \
                if not works else log.info("user store takes writes again")
        elif not writes and works != self.readable:
            self.readable = works
            log.warning("user store unreachable (%s): suggestions go on without personalization", why) \
                if not works else log.info("user store answers again")
        self.metrics.store_up.set(int(self.readable and self.writable))
        self.metrics.store_writable.set(int(self.writable))

    # ---- a keystroke's model -------------------------------------------------------------

    async def model(self, user: str) -> UserModel | None:
        """The user's model for a keystroke, checked against the store within REFRESH_EVERY;
        None while that cannot be had within LOAD_WAIT (no personalization, no error)."""
        cached = self.cache.get(user)
        if cached is not None and self.clock.monotonic() - cached.checked <= REFRESH_EVERY:
            return cached.model
        if not self.readable and self.clock.monotonic() - self.failed_at < RETRY_EVERY:
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
                return cached
        model, generation, version = await self._call("load", self.reader, self._read, user)
        if generation < self.forgotten.get(user, 0):
            return None  # read before a Forget this process has made since
        suppressed = set(model.suppressed)
        for batch in self.queue.of(user, generation):  # ours, not in the store yet
            for entry, (count, seen) in batch.entries().items():
                model.add(entry, count, seen)
        model.suppressed |= suppressed  # whether that learning lifts a suppression, its write decides
        cached = self.cache[user] = Cached(model, generation, version, self.clock.monotonic())
        self.metrics.users_cached.set(len(self.cache))
        return cached

    def _read(self, user: str) -> tuple[UserModel, int, int]:
        """On the reader thread: the user's snapshot built into a model (tens of ms for a big
        user: not on the event loop)."""
        snapshot = self.store.load(user)
        return UserModel(snapshot.entries, snapshot.suppressed), snapshot.generation, snapshot.version

    # ---- learning -------------------------------------------------------------------------

    async def learn(self, user: str, message: str, looks_random: Callable[[str], bool] | None = None,
                    evidence: Callable[[UserModel], Awaitable[dict[str, int]]] | None = None) -> Learned:
        """Count a sent message for the user (see the module doc for what the answer promises);
        `looks_random`: the serving model's judge of made-up strings (model/engine/strip.py);
        `evidence`: the entries that move the user's scale, from their model before the message."""
        if self.queue.refuses(user):  # before any work
            return self._dropped(Outcome.BUSY)
        if len(message) > INLINE_CHARS:  # a long message is read on a thread: keystrokes go on meanwhile
            return await self.add(user, await asyncio.to_thread(message_entries, message, looks_random), evidence)
        return await self.add(user, message_entries(message, looks_random), evidence)

    async def add(self, user: str, entries: dict[str, int],
                  evidence: Callable[[UserModel], Awaitable[dict[str, int]]] | None = None) -> Learned:
        """Count entries for the user: a sent message's, or words imported. The evidence for
        the user's scale is taken only where their model is at hand (cached: they typed with
        it) in the generation learned in: a Learn of a user not typing costs no model step
        and no load."""
        words = sum(count for entry, count in entries.items() if " " not in entry)
        if not words:
            return Learned(0, Outcome.NOTHING_TO_LEARN)
        if not self.writable:
            return self._dropped(Outcome.STORE_DOWN)
        if not self.queue.room(user, len(entries)):
            return self._dropped(Outcome.BUSY)
        try:
            generation, version = await asyncio.wait_for(
                asyncio.shield(self._call("learn", self.reader, self.store.stamp, user)), LOAD_WAIT)
        except StoreDown:
            return self._dropped(Outcome.STORE_DOWN)
        except asyncio.TimeoutError:
            return self._dropped(Outcome.BUSY)
        cached = self.cache.get(user)
        if evidence is not None and cached is not None and cached.generation == generation:
            entries = {**entries, **await evidence(cached.model)}
            cached = self.cache.get(user)
        self.queue.add(user, generation, version, entries, self.clock.now())
        if cached is not None and cached.generation == generation:
            now = self.clock.now()
            for entry, count in entries.items():
                cached.model.add(entry, count, now)
        elif cached is not None:
            cached.checked = -math.inf  # forgotten elsewhere: read it again at the next keystroke
        self.metrics.learned.inc()
        return Learned(words, Outcome.LEARNED)

    def _dropped(self, outcome: Outcome, messages: int = 1) -> Learned:
        self.metrics.learn_dropped.labels(outcome.value).inc(messages)
        return Learned(0, outcome)

    async def flush(self) -> None:
        """Write what was learned, oldest first; what the store cannot take now stays queued.
        With nothing to write while writes fail, a probe finds out when they work again."""
        self.queue.seal()
        for batch in list(self.queue.sealed):
            if not await self._write(batch):
                return
        if not self.writable and self.clock.monotonic() - self.failed_at >= RETRY_EVERY:
            try:
                await self._call("probe", self.writer, self.store.probe)
            except StoreDown:
                pass

    async def _write(self, batch: Batch) -> bool:
        """Write one batch; False (and still queued, under the same id) when the store fails."""
        try:
            written = await self._call("write", self.writer, self.store.write, batch.user, batch.generation, batch.since,
                                       batch.entries(), self.max_entries, batch.id)
        except StoreDown:
            return False
        self.queue.written(batch)
        if not written.kept:  # the user was forgotten since this was learned
            self.metrics.learn_dropped.labels("forgotten").inc(batch.messages)
            return True
        cached = self.cache.get(batch.user)
        if cached is not None and cached.generation == batch.generation and not written.repeated:
            if written.version == cached.version + 1 and not written.pruned and not written.suppression:
                cached.version = written.version  # our write was the only change: the model is current
            else:
                cached.checked = -math.inf
        return True

    async def export(self, user: str) -> Snapshot:
        """Everything the store holds for the user, this process's learning written first;
        Unavailable when the store cannot be reached."""
        try:
            self.queue.seal()
            for batch in [b for b in self.queue.sealed if b.user == user]:
                if not await self._write(batch):
                    raise StoreDown("write")
            return await self._call("load", self.reader, self.store.load, user)
        except StoreDown:
            raise Unavailable("the user store is unreachable; try again") from None

    # ---- forgetting -----------------------------------------------------------------------

    async def forget(self, user: str) -> Forgotten:
        """Delete everything of the user in the store, then here; Unavailable (nothing
        forgotten, nothing lost) when the store cannot be reached."""
        forgotten = await self._forget("forget", self.store.forget, user)
        self.forgotten[user] = forgotten.generation
        self.cache.pop(user, None)
        self.metrics.users_cached.set(len(self.cache))
        dropped = self.queue.forget(user, forgotten.generation)
        if dropped:
            self.metrics.learn_dropped.labels("forgotten").inc(dropped)
        return forgotten

    async def forget_word(self, user: str, word: str) -> Forgotten:
        """Delete every entry of the user holding the word, and suppress the word for them until
        they send it again (store.py). Unavailable as forget."""
        forgotten = await self._forget("forget", self.store.forget_word, user, word.lower())
        cached = self.cache.get(user)
        if cached is not None:
            cached.checked = -math.inf  # read again, suppression included, at the next keystroke
        return forgotten

    async def _forget(self, operation: str, fn, *args) -> Forgotten:
        try:
            forgotten = await self._call(operation, self.writer, fn, *args)
        except StoreDown:
            raise Unavailable("the user store is unreachable: nothing was forgotten; try again") from None
        if not forgotten.wiped:
            self._unwiped(True)
        return forgotten

    def _unwiped(self, unwiped: bool) -> None:
        if unwiped != self.unwiped:
            self.unwiped = unwiped
            self.metrics.wipe_pending.set(int(unwiped))
            log.warning("another program reads the user store: deleted data stays in its write-ahead log until it "
                        "lets go (retried every %.1f s)", FLUSH_EVERY) if unwiped else \
                log.info("the user store's write-ahead log is truncated: deleted data is off the disk")

    # ---- upkeep ---------------------------------------------------------------------------

    async def _run(self) -> None:
        every = min(EXPIRE_EVERY, max(self.store.ttl / 4, 1.0))  # a short time to live is kept closely too
        last_expiry = -every
        while True:
            await self.clock.sleep(FLUSH_EVERY)
            await self.flush()
            try:
                if self.unwiped:
                    self._unwiped(not await self._call("wipe", self.writer, self.store.wipe))
                if self.clock.monotonic() - last_expiry > every:
                    last_expiry = self.clock.monotonic()
                    gone = await self._call("expire", self.writer, self.store.expire)
                    if gone:
                        log.info("expired %d users unseen for the time to live", gone)
            except StoreDown:
                pass

    async def close(self, within: float = 1.0) -> None:
        """On drain: stop, write what is queued (trying for up to `within` seconds while the
        store fails), say what could not be kept, close the store."""
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        deadline = self.clock.monotonic() + within
        while True:
            await self.flush()
            if not self.queue or self.clock.monotonic() >= deadline:
                break
            await self.clock.sleep(min(FLUSH_EVERY / 2, max(deadline - self.clock.monotonic(), 0)))
        if self.queue:
            messages = self.queue.messages()
            self.metrics.learn_dropped.labels("shutdown").inc(messages)
            log.warning("user store unreachable at shutdown: %d messages answered LEARNED were not written, and are "
                        "lost", messages)
        self.reader.shutdown()
        await asyncio.get_running_loop().run_in_executor(self.writer, self.store.close)
        self.writer.shutdown()
