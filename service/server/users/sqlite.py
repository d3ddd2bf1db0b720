"""The user store in one SQLite file (the default), safe for several processes; the
contract it keeps is store.py's."""
from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

from service.server.users.store import (KEEP, TOMBSTONE_DAYS, Entries, Snapshot, Written, down, mentions,
                                        unsuppressed)

ERRORS = (sqlite3.Error, OSError)


class SqliteStore:
    """One SQLite file, safe for several processes (WAL, waiting on each other's locks)."""

    SCHEMA = """
        CREATE TABLE IF NOT EXISTS entries (user TEXT, entry TEXT, count INTEGER, seen REAL,
                                            PRIMARY KEY (user, entry)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS users (user TEXT PRIMARY KEY, version INTEGER, seen REAL,
                                          generation INTEGER NOT NULL DEFAULT 0,
                                          size INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS suppressed (user TEXT, word TEXT, at INTEGER,
                                               PRIMARY KEY (user, word)) WITHOUT ROWID;
    """

    def __init__(self, path: Path, ttl_seconds: float):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.ttl = path, ttl_seconds
        self.writer = self._connect()
        self._use_wal()
        with self._transaction():
            self._migrate()
        self.reader = self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=5, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA secure_delete = ON")  # deleted rows are zeroed, not left in free space
        return db

    def _use_wal(self, wait_s: float = 5.0) -> None:
        """WAL: readers and one writer of several processes at once. The switch takes an
        exclusive lock that SQLite does not wait for (its busy timeout does not apply), so
        workers opening a new file together would fail: they retry."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self.writer.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _migrate(self) -> None:
        """Files of the first schema (no generation, size or suppressed words) are brought up to date.
        (Statement by statement: executescript would commit the transaction.)"""
        for statement in filter(str.strip, self.SCHEMA.split(";")):
            self.writer.execute(statement)
        columns = {row[1] for row in self.writer.execute("PRAGMA table_info(users)")}
        if "generation" not in columns:
            self.writer.execute("ALTER TABLE users ADD COLUMN generation INTEGER NOT NULL DEFAULT 0")
        if "size" not in columns:
            self.writer.execute("ALTER TABLE users ADD COLUMN size INTEGER NOT NULL DEFAULT 0")
            self.writer.execute("UPDATE users SET size = (SELECT count(*) FROM entries WHERE entries.user = users.user)")

    # ---- reads (the reader thread) --------------------------------------------------------

    def load(self, user: str) -> Snapshot:
        with down("SQLite", ERRORS), _snapshot(self.reader):
            rows = self.reader.execute("SELECT entry, count, seen FROM entries WHERE user = ?", (user,)).fetchall()
            words = self.reader.execute("SELECT word FROM suppressed WHERE user = ?", (user,)).fetchall()
            generation, version = self._stamp(self.reader, user)
        return Snapshot({e: (c, s) for e, c, s in rows}, {w for (w,) in words}, generation, version)

    def stamp(self, user: str) -> tuple[int, int]:
        """(generation, version) of a user: (0, 0) for one the store has never seen."""
        with down("SQLite", ERRORS):
            return self._stamp(self.reader, user)

    @staticmethod
    def _stamp(db: sqlite3.Connection, user: str) -> tuple[int, int]:
        row = db.execute("SELECT generation, version FROM users WHERE user = ?", (user,)).fetchone()
        return (row[0], row[1]) if row else (0, 0)

    # ---- writes (the writer thread) -------------------------------------------------------

    def write(self, user: str, generation: int, since: int, added: Entries, most: int) -> Written:
        """Add counts (with the time each entry was last learned) learned in `generation` at
        version `since` or later; refused (kept False) if the user was forgotten since. See
        the module doc for suppressed words."""
        with self._transaction():
            current, version = self._stamp(self.writer, user)
            if current != generation:
                return Written(False, version)
            db = self.writer
            kept, lifted = unsuppressed(added, dict(db.execute("SELECT word, at FROM suppressed WHERE user = ?", (user,))), since)
            db.executemany("UPDATE entries SET count = count + ?, seen = max(seen, ?) WHERE user = ? AND entry = ?",
                           [(c, seen, user, e) for e, (c, seen) in kept.items()])
            new = db.executemany("INSERT INTO entries VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                                 [(user, e, c, seen) for e, (c, seen) in kept.items()]).rowcount
            now = max((seen for _, seen in kept.values()), default=time.time())
            db.executemany("DELETE FROM suppressed WHERE user = ? AND word = ?", [(user, w) for w in lifted])
            db.execute("INSERT INTO users (user, version, seen, generation, size) VALUES (?, 1, ?, ?, ?) "
                       "ON CONFLICT (user) DO UPDATE SET version = version + 1, seen = excluded.seen, size = size + ?",
                       (user, now, generation, new, new))
            pruned = self._prune(user, most)
            return Written(True, version + 1, pruned, bool(lifted) or len(kept) < len(added))

    def _prune(self, user: str, most: int) -> int:
        size = self.writer.execute("SELECT size FROM users WHERE user = ?", (user,)).fetchone()[0]
        if size <= most:
            return 0
        gone = size - int(most * KEEP)
        self.writer.execute("DELETE FROM entries WHERE user = ? AND entry IN (SELECT entry FROM entries WHERE user = ? "
                            "ORDER BY CAST(seen / 86400 AS INTEGER), count, seen LIMIT ?)", (user, user, gone))
        self.writer.execute("UPDATE users SET size = size - ? WHERE user = ?", (gone, user))
        return gone

    def forget(self, user: str) -> int:
        """Delete everything of the user, bump its generation; returns the new generation."""
        with self._transaction():
            self.writer.execute("DELETE FROM entries WHERE user = ?", (user,))
            self.writer.execute("DELETE FROM suppressed WHERE user = ?", (user,))
            self.writer.execute("INSERT INTO users (user, version, seen, generation, size) VALUES (?, 1, ?, 1, 0) "
                                "ON CONFLICT (user) DO UPDATE SET version = version + 1, seen = excluded.seen, "
                                "generation = generation + 1, size = 0", (user, time.time()))
            generation = self._stamp(self.writer, user)[0]
        self._wipe()
        return generation

    def forget_word(self, user: str, word: str) -> int:
        """Delete every entry holding the word (lower-cased) and suppress it; returns how many went."""
        with self._transaction():
            entries = [e for (e,) in self.writer.execute("SELECT entry FROM entries WHERE user = ?", (user,))
                       if mentions(e, word)]
            self.writer.executemany("DELETE FROM entries WHERE user = ? AND entry = ?", [(user, e) for e in entries])
            self.writer.execute("INSERT INTO users (user, version, seen, generation, size) VALUES (?, 1, ?, 0, 0) "
                                "ON CONFLICT (user) DO UPDATE SET version = version + 1, size = size - ?",
                                (user, time.time(), len(entries)))
            version = self._stamp(self.writer, user)[1]
            self.writer.execute("INSERT INTO suppressed VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET at = excluded.at",
                                (user, word, version))
        self._wipe()
        return len(entries)

    def _wipe(self, wait_s: float = 5.0) -> None:
        """Move the WAL into the file and truncate it, so no file keeps what was just deleted.
        Readers of other processes can hold it up for a moment: retried until `wait_s`."""
        deadline = time.monotonic() + wait_s
        with down("SQLite", ERRORS):
            while self.writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:
                if time.monotonic() > deadline:
                    raise sqlite3.OperationalError("the WAL could not be truncated: readers held it")
                time.sleep(0.01)

    def expire(self, now: float | None = None) -> int:
        """Delete users not seen for the time to live; returns how many. A forgotten user's
        tombstone stays for at least TOMBSTONE_DAYS (see the module doc)."""
        now = now or time.time()
        cutoff, tombstones = now - self.ttl, now - max(self.ttl, TOMBSTONE_DAYS * 86400)
        with self._transaction():
            gone = self.writer.execute("SELECT user FROM users WHERE seen < ? AND size > 0", (cutoff,)).fetchall()
            for table in ("entries", "suppressed"):
                self.writer.execute(f"DELETE FROM {table} WHERE user IN (SELECT user FROM users WHERE seen < ?)", (cutoff,))
            self.writer.execute("DELETE FROM users WHERE seen < ? AND (generation = 0 OR seen < ?)", (cutoff, tombstones))
            self.writer.execute("UPDATE users SET size = 0, version = version + 1 WHERE seen < ? AND size > 0", (cutoff,))
        if gone:
            self._wipe()
        return len(gone)

    @contextlib.contextmanager
    def _transaction(self):
        """One write transaction, taken at once (other processes wait for it), undone on error."""
        with down("SQLite", ERRORS):
            self.writer.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.writer.execute("ROLLBACK")
                raise
            self.writer.execute("COMMIT")

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


@contextlib.contextmanager
def _snapshot(db: sqlite3.Connection):
    """Reads that see one instant of the file (a read transaction in WAL mode)."""
    db.execute("BEGIN")
    try:
        yield
    finally:
        db.execute("COMMIT")
