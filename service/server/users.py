"""Users' models for the service: a bounded in-process cache in front of the store.

- A keystroke never waits on the store for long and never fails because of it: a user
  not in the cache is loaded once (at most LOAD_WAIT seconds), and while the store is
  down suggestions go on without personalization.
- Learning is applied in memory at once and written behind, every FLUSH_EVERY seconds
  and on drain (`close`). A write that fails is kept and retried; past MAX_PENDING
  entries waiting for a user, new learning is dropped and counted.
- Every REFRESH_EVERY seconds a cached user's version is checked against the store, so
  several processes see each other's learning (and forgetting).
- Bounds: a user keeps at most `max_entries` entries (UserModel.prune); the store drops
  users who sent nothing for the time to live (typing alone does not count: it writes
  nothing); the cache keeps at most `max_users` users.

Logs and metrics say when the store is down or back; never a user, a key or a word.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from model.engine.personal import UserModel
from service.server.stores import StoreDown

log = logging.getLogger("nextword.users")

LOAD_WAIT = 0.5        # seconds a keystroke waits for a user's model to load
FLUSH_EVERY = 0.5      # seconds between writes of what was learned
REFRESH_EVERY = 1.0    # seconds before a cached user is checked against the store again
EXPIRE_EVERY = 3600.0  # seconds between sweeps for expired users (at most)
MAX_PENDING = 10_000   # entries waiting to be written for one user, at most


class ForgetFailed(Exception):
    """Forget could not reach the store: nothing was forgotten."""


@dataclass
class Cached:
    model: UserModel
    version: int
    checked: float                                   # monotonic time of the last version check
    added: dict[str, int] = field(default_factory=dict)   # learned, not yet written
    dropped: set[str] = field(default_factory=set)        # pruned, not yet deleted from the store
    checking: bool = False


class Users:
    def __init__(self, store, metrics, max_users: int, max_entries: int):
        self.store, self.metrics = store, metrics
        self.max_users, self.max_entries = max_users, max_entries
        self.cache: OrderedDict[str, Cached] = OrderedDict()
        self.loading: dict[str, asyncio.Future] = {}
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="user-store")  # one writer per process
        self.up = True
        self.metrics.store_up.set(1)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _call(self, operation: str, fn, *args):
        """Run a store call on the store's thread; StoreDown is counted, logged once, raised."""
        try:
            result = await asyncio.get_running_loop().run_in_executor(self.thread, fn, *args)
        except StoreDown as e:
            self.metrics.store_errors.labels(operation).inc()
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

    async def model(self, user: str) -> UserModel | None:
        """The user's model for a keystroke; None while it cannot be had from the store."""
        cached = self.cache.get(user)
        if cached is not None:
            self.cache.move_to_end(user)
            if time.monotonic() - cached.checked > REFRESH_EVERY and not cached.checking:
                cached.checking = True
                asyncio.ensure_future(self._refresh(user, cached))
            return cached.model
        try:
            return (await asyncio.wait_for(asyncio.shield(self._load(user)), LOAD_WAIT)).model
        except (StoreDown, asyncio.TimeoutError):
            return None

    def _load(self, user: str) -> asyncio.Future:
        """The user's loading into the cache: one per user, however many calls wait on it
        (each behind asyncio.shield, so a caller that gives up does not cancel it)."""
        loading = self.loading.get(user)
        if loading is None:
            loading = self.loading[user] = asyncio.ensure_future(self._fetch(user))
            loading.add_done_callback(lambda done: self._loaded(user, done))
        return loading

    def _loaded(self, user: str, done: asyncio.Future) -> None:
        self.loading.pop(user, None)
        if not done.cancelled():
            done.exception()  # seen, so asyncio does not log it again: _call counted and logged it

    def _read(self, user: str) -> tuple[UserModel, int]:
        """On the store's thread: the user's entries, built into a model (tens of ms for a
        big user: not on the event loop)."""
        entries, version = self.store.load(user)
        return UserModel(entries), version

    async def _fetch(self, user: str) -> Cached:
        model, version = await self._call("load", self._read, user)
        cached = self.cache.get(user)
        if cached is None:
            cached = Cached(model, version, time.monotonic())
            self.cache[user] = cached
            self._evict()
            self.metrics.users_cached.set(len(self.cache))
        return cached

    async def _refresh(self, user: str, cached: Cached) -> None:
        """Reload a cached user if another process changed it in the store."""
        try:
            version = await self._call("check", self.store.version, user)
            if version != cached.version and self.cache.get(user) is cached:
                model, version = await self._call("load", self._read, user)
                for entry, count in cached.added.items():  # what this process learned and has not written
                    model.add(entry, count, time.time())
                for entry in cached.dropped:
                    model.remove(entry)
                cached.model, cached.version = model, version
        except StoreDown:
            pass
        except Exception as e:  # a bug: its type only, never its message (it could hold a word)
            log.error("reloading a user's model failed: %s", type(e).__name__)
        finally:
            cached.checked, cached.checking = time.monotonic(), False

    def _evict(self) -> None:
        """Drop least recently used users past the bound; ones with writes pending stay."""
        for user in list(self.cache):
            if len(self.cache) <= self.max_users:
                return
            cached = self.cache[user]
            if not cached.added and not cached.dropped:
                del self.cache[user]

    async def learn(self, user: str, message: str) -> int:
        """Learn a sent message; returns the words counted (0 when dropped: store down)."""
        try:
            cached = self.cache.get(user) or await asyncio.shield(self._load(user))
        except StoreDown:
            self.metrics.learn_dropped.inc()
            return 0
        if len(cached.added) >= MAX_PENDING:
            self.metrics.learn_dropped.inc()
            return 0
        added = cached.model.learn(message, time.time())
        for entry, count in added.items():
            cached.added[entry] = cached.added.get(entry, 0) + count
            cached.dropped.discard(entry)
        for entry in cached.model.prune(self.max_entries):
            cached.added.pop(entry, None)
            cached.dropped.add(entry)
        self.metrics.learned.inc()
        return sum(count for entry, count in added.items() if " " not in entry)

    async def forget(self, user: str) -> None:
        """Delete everything of the user, in the store and here; ForgetFailed if the store is down."""
        cached = self.cache.pop(user, None)
        self.metrics.users_cached.set(len(self.cache))
        try:
            await self._call("forget", self.store.forget, user)
        except StoreDown:
            raise ForgetFailed("the user store is unreachable: nothing was forgotten; try again") from None
        if cached is not None:
            cached.added.clear()
            cached.dropped.clear()

    async def flush(self) -> None:
        """Write what was learned; what fails stays pending for the next try."""
        for user, cached in list(self.cache.items()):
            if not cached.added and not cached.dropped:
                continue
            added, dropped = cached.added, cached.dropped
            cached.added, cached.dropped = {}, set()
            try:
                version = await self._call("write", self.store.write, user, added, sorted(dropped), time.time())
            except StoreDown:
                for entry, count in added.items():  # keep it, with anything learned meanwhile
                    cached.added[entry] = cached.added.get(entry, 0) + count
                cached.dropped |= dropped - set(cached.added)
                return
            if self.cache.get(user) is cached:
                if version != cached.version + 1:
                    cached.checked = 0.0  # another process wrote as well: reload at the next keystroke
                cached.version = version
        self._evict()

    async def _run(self) -> None:
        every = min(EXPIRE_EVERY, max(self.store.ttl / 4, 1.0))  # a short time to live is kept closely too
        last_expiry = -every
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            await self.flush()
            if time.monotonic() - last_expiry > every:
                last_expiry = time.monotonic()
                try:
                    gone = await self._call("expire", self.store.expire)
                    if gone:
                        log.info("expired %d users unseen for the time to live", gone)
                except StoreDown:
                    pass

    async def close(self) -> None:
        """On drain: stop, write what is pending (one last try), close the store."""
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()
        pending = sum(len(c.added) + len(c.dropped) for c in self.cache.values())
        if pending:
            log.warning("user store unreachable at shutdown: %d learned entries not written", pending)
        await asyncio.get_running_loop().run_in_executor(self.thread, self.store.close)
        self.thread.shutdown()
