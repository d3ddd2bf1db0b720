"""Where users' models are kept: SQLite (the default, a file) or Redis (shared by replicas).

Both keep the same thing per user: entries (model/engine/personal.py) with a count and the time
last seen, and a version that every change bumps, so a process holding a user's model in
memory notices another process's learning. A user is named by a digest of their key
(service/server/security.py), never by the key. Writes add to counts, so processes writing the
same user at once all count.

The calls block: service/server/users.py runs them on one thread of its own (one writer per
process), away from the event loop.
"""
from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

import redis

Entries = dict[str, tuple[int, float]]  # entry -> (count, last seen, unix time)


class StoreDown(Exception):
    """The store did not answer (Redis unreachable, SQLite file unusable)."""


class SqliteStore:
    """One SQLite file, safe for several processes (WAL, waiting on each other's locks)."""

    def __init__(self, path: Path, ttl_seconds: float):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.ttl = path, ttl_seconds
        self.db = sqlite3.connect(path, timeout=5, check_same_thread=False, isolation_level=None)
        self._use_wal()
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS entries (user TEXT, entry TEXT, count INTEGER, seen REAL,
                                                PRIMARY KEY (user, entry)) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS users (user TEXT PRIMARY KEY, version INTEGER, seen REAL) WITHOUT ROWID;
        """)

    def _use_wal(self, wait_s: float = 5.0) -> None:
        """WAL: readers and one writer of several processes at once. The switch takes an
        exclusive lock that SQLite does not wait for (its busy timeout does not apply), so
        workers opening a new file together would fail: they retry."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def load(self, user: str) -> tuple[Entries, int]:
        with _down("SQLite"):
            rows = self.db.execute("SELECT entry, count, seen FROM entries WHERE user = ?", (user,)).fetchall()
            return {e: (c, s) for e, c, s in rows}, self.version(user)

    def version(self, user: str) -> int:
        with _down("SQLite"):
            row = self.db.execute("SELECT version FROM users WHERE user = ?", (user,)).fetchone()
            return row[0] if row else 0

    def write(self, user: str, added: dict[str, int], dropped: list[str], now: float) -> int:
        """Add counts, drop entries; returns the user's new version."""
        with self._transaction():
            self.db.executemany(
                "INSERT INTO entries VALUES (?, ?, ?, ?) ON CONFLICT (user, entry) "
                "DO UPDATE SET count = count + excluded.count, seen = excluded.seen",
                [(user, e, c, now) for e, c in added.items()])
            self.db.executemany("DELETE FROM entries WHERE user = ? AND entry = ?", [(user, e) for e in dropped])
            self.db.execute("INSERT INTO users VALUES (?, 1, ?) ON CONFLICT (user) "
                            "DO UPDATE SET version = version + 1, seen = excluded.seen", (user, now))
            return self.db.execute("SELECT version FROM users WHERE user = ?", (user,)).fetchone()[0]

    def forget(self, user: str) -> None:
        with self._transaction():
            self.db.execute("DELETE FROM entries WHERE user = ?", (user,))
            self.db.execute("DELETE FROM users WHERE user = ?", (user,))

    def expire(self, now: float | None = None) -> int:
        """Delete the users not seen for the time to live; returns how many."""
        cutoff = (now or time.time()) - self.ttl
        with self._transaction():
            self.db.execute("DELETE FROM entries WHERE user IN (SELECT user FROM users WHERE seen < ?)", (cutoff,))
            return self.db.execute("DELETE FROM users WHERE seen < ?", (cutoff,)).rowcount

    @contextlib.contextmanager
    def _transaction(self):
        """One write transaction, taken at once (other processes wait for it), undone on error."""
        with _down("SQLite"):
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()


class RedisStore:
    """Per user three keys: counts and last-seen times (hashes), a version; each expires
    after the time to live, renewed by every write."""

    def __init__(self, url: str, ttl_seconds: float):
        self.redis = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self.errors = (redis.RedisError, OSError)
        self.ttl = max(int(ttl_seconds), 1)

    @staticmethod
    def _keys(user: str) -> tuple[str, str, str]:
        return f"nextword:{user}:count", f"nextword:{user}:seen", f"nextword:{user}:version"

    def load(self, user: str) -> tuple[Entries, int]:
        counts_key, seen_key, version_key = self._keys(user)
        with _down("Redis", self.errors):
            pipe = self.redis.pipeline(transaction=True)
            pipe.hgetall(counts_key).hgetall(seen_key).get(version_key)
            counts, seen, version = pipe.execute()
        entries = {e.decode(): (int(c), float(seen.get(e, 0))) for e, c in counts.items()}
        return entries, int(version or 0)

    def version(self, user: str) -> int:
        with _down("Redis", self.errors):
            return int(self.redis.get(self._keys(user)[2]) or 0)

    def write(self, user: str, added: dict[str, int], dropped: list[str], now: float) -> int:
        keys = self._keys(user)
        with _down("Redis", self.errors):
            pipe = self.redis.pipeline(transaction=True)
            for entry, count in added.items():
                pipe.hincrby(keys[0], entry, count)
            if added:
                pipe.hset(keys[1], mapping={e: now for e in added})
            if dropped:
                pipe.hdel(keys[0], *dropped).hdel(keys[1], *dropped)
            pipe.incr(keys[2])
            for key in keys:
                pipe.expire(key, self.ttl)
            results = pipe.execute()
        return int(results[-4])  # INCR's answer, before the three EXPIREs

    def forget(self, user: str) -> None:
        with _down("Redis", self.errors):
            self.redis.delete(*self._keys(user))

    def expire(self, now: float | None = None) -> int:
        return 0  # Redis expires the keys itself

    def close(self) -> None:
        self.redis.close()


@contextlib.contextmanager
def _down(name: str, errors: tuple = (sqlite3.Error, OSError)):
    """Turns the store's own errors into StoreDown (its type only: no user data in it)."""
    try:
        yield
    except errors as error:
        raise StoreDown(f"{name}: {type(error).__name__}") from None
