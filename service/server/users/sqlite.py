"""The user store in one SQLite file (the default), safe for several processes; the
contract it keeps is store.py's.

No word is stored readable: entries and suppressed words are sealed with a key of the
user's own (sealed.py), found by a keyed digest, and the key goes with the salt in the
user's row at every Forget. SQLite leaves stale copies of rows in the slack of pages it
rebuilds (secure_delete does not reach them), so a Forget that only deleted rows could
leave words in the file (the first schemas, which kept words readable, did); sealed, what
stays is noise. Deleted rows are zeroed all the same, and the write-ahead log truncated.
"""
from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from pathlib import Path

from model.engine.personal import MAX_COUNT
from service.server.users.sealed import Sealer, new_salt
from service.server.users.store import (DAY, TOMBSTONE_DAYS, WRITES_KEPT, Entries, Forgotten, Snapshot, Written, down,
                                        mentions, prune_count, prune_key, score_sql, saturated, unsuppressed)

ERRORS = (sqlite3.Error, OSError)
SCHEMA_VERSION = 3  # PRAGMA user_version: 3 since words are sealed
WIPE_WAIT = 0.5     # seconds a Forget waits for other programs' readers before it answers (then: in the background)
SCHEMA = """
    CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, user TEXT NOT NULL UNIQUE, version INTEGER NOT NULL,
                                      seen REAL NOT NULL, generation INTEGER NOT NULL, size INTEGER NOT NULL,
                                      salt BLOB NOT NULL);
    CREATE TABLE IF NOT EXISTS entries (id INTEGER PRIMARY KEY, user TEXT NOT NULL, digest BLOB NOT NULL,
                                        entry BLOB NOT NULL, count INTEGER NOT NULL, seen REAL NOT NULL);
    CREATE UNIQUE INDEX IF NOT EXISTS entries_by_digest ON entries (user, digest);
    CREATE TABLE IF NOT EXISTS suppressed (id INTEGER PRIMARY KEY, user TEXT NOT NULL, digest BLOB NOT NULL,
                                           word BLOB NOT NULL, at INTEGER NOT NULL);
    CREATE UNIQUE INDEX IF NOT EXISTS suppressed_by_digest ON suppressed (user, digest);
    CREATE TABLE IF NOT EXISTS writes (user TEXT NOT NULL, id TEXT NOT NULL, at REAL NOT NULL,
                                       PRIMARY KEY (user, id)) WITHOUT ROWID;
"""


class SqliteStore:
    """One SQLite file, safe for several processes (WAL, waiting on each other's locks)."""

    def __init__(self, path: Path, ttl_seconds: float, secret: bytes):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.ttl, self.secret = path, ttl_seconds, secret
        self.writer = self._connect()
        self._use_wal()
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
        """Make the tables, or bring a file of the first schemas (words in keys) up to date:
        copied into the new tables, the old ones dropped, and the file rebuilt (VACUUM) so
        that none of their pages stays behind."""
        with self._transaction():
            if self.writer.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
                return
            old = {name for (name,) in self.writer.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            for table in old & {"users", "entries", "suppressed"}:
                self.writer.execute(f"ALTER TABLE {table} RENAME TO old_{table}")
            for statement in filter(str.strip, SCHEMA.split(";")):  # (executescript would commit)
                self.writer.execute(statement)
            if old & {"users", "entries"}:
                self._copy_old()
            self.writer.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        if old & {"users", "entries"}:
            with down("SQLite", ERRORS):
                self.writer.execute("VACUUM")

    def _copy_old(self) -> None:
        db = self.writer
        columns = {row[1] for row in db.execute("PRAGMA table_info(old_users)")}
        generation = "generation" if "generation" in columns else "0"
        sealers = {}
        for user, version, seen, gen in db.execute(f"SELECT user, version, seen, {generation} FROM old_users").fetchall():
            salt = new_salt()
            sealers[user] = Sealer(self.secret, user, salt)
            db.execute("INSERT INTO users (user, version, seen, generation, size, salt) VALUES (?, ?, ?, ?, 0, ?)",
                       (user, version, seen, gen, salt))
        for user, entry, count, seen in db.execute("SELECT user, entry, count, seen FROM old_entries").fetchall():
            if user in sealers:
                db.execute("INSERT INTO entries (user, digest, entry, count, seen) VALUES (?, ?, ?, ?, ?)",
                           (user, sealers[user].digest(entry), sealers[user].seal(entry), saturated(count), seen))
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'old_suppressed'").fetchone():
            for user, word, at in db.execute("SELECT user, word, at FROM old_suppressed").fetchall():
                if user in sealers:
                    db.execute("INSERT INTO suppressed (user, digest, word, at) VALUES (?, ?, ?, ?)",
                               (user, sealers[user].digest(word), sealers[user].seal(word), at))
        db.execute("UPDATE users SET size = (SELECT count(*) FROM entries WHERE entries.user = users.user)")
        for table in ("old_entries", "old_suppressed", "old_users"):
            db.execute(f"DROP TABLE IF EXISTS {table}")

    # ---- reads (the reader thread) --------------------------------------------------------

    def load(self, user: str) -> Snapshot:
        with down("SQLite", ERRORS), _snapshot(self.reader):
            rows = self.reader.execute("SELECT entry, count, seen FROM entries WHERE user = ?", (user,)).fetchall()
            words = self.reader.execute("SELECT word FROM suppressed WHERE user = ?", (user,)).fetchall()
            row = self.reader.execute("SELECT generation, version, salt FROM users WHERE user = ?", (user,)).fetchone()
        if row is None:
            return Snapshot({}, set(), 0, 0)
        sealer = Sealer(self.secret, user, row[2])
        return Snapshot({sealer.open(e): (c, s) for e, c, s in rows}, {sealer.open(w) for (w,) in words}, row[0], row[1])

    def stamp(self, user: str) -> tuple[int, int]:
        """(generation, version) of a user: (0, 0) for one the store has never seen."""
        with down("SQLite", ERRORS):
            return self._stamp(self.reader, user)

    @staticmethod
    def _stamp(db: sqlite3.Connection, user: str) -> tuple[int, int]:
        row = db.execute("SELECT generation, version FROM users WHERE user = ?", (user,)).fetchone()
        return (row[0], row[1]) if row else (0, 0)

    # ---- writes (the writer thread) -------------------------------------------------------

    def write(self, user: str, generation: int, since: int, added: Entries, most: int,
              write_id: str | None = None) -> Written:
        """Add counts (with the time each entry was last learned) learned in `generation` at
        version `since` or later, once per `write_id` (None: a write of its own); refused
        (kept False) if the user was forgotten since. See store.py for suppressed words."""
        write_id = write_id or uuid.uuid4().hex
        with self._transaction():
            db = self.writer
            current, version = self._stamp(db, user)
            if current != generation:
                return Written(False, version)
            now = max((seen for _, seen in added.values()), default=time.time())
            db.execute("DELETE FROM writes WHERE user = ? AND at < ?", (user, now - WRITES_KEPT))
            if not db.execute("INSERT INTO writes VALUES (?, ?, ?) ON CONFLICT DO NOTHING", (user, write_id, now)).rowcount:
                return Written(True, version, repeated=True)
            sealer = self._sealer(user, generation, now)
            suppressed = {sealer.open(w): at for w, at in db.execute("SELECT word, at FROM suppressed WHERE user = ?", (user,))}
            kept, lifted = unsuppressed(added, suppressed, since)
            rows = [(c, seen, user, sealer.digest(e), sealer.seal(e)) for e, (c, seen) in kept.items()]
            db.executemany(f"UPDATE entries SET count = min(count + ?, {MAX_COUNT}), seen = max(seen, ?) "
                           "WHERE user = ? AND digest = ?", [r[:4] for r in rows])
            new = db.executemany("INSERT INTO entries (count, seen, user, digest, entry) VALUES (?, ?, ?, ?, ?) "
                                 "ON CONFLICT DO NOTHING", [(saturated(c), s, u, d, e) for c, s, u, d, e in rows]).rowcount
            db.executemany("DELETE FROM suppressed WHERE user = ? AND digest = ?", [(user, sealer.digest(w)) for w in lifted])
            db.execute("UPDATE users SET version = version + 1, seen = ?, size = size + ? WHERE user = ?", (now, new, user))
            pruned = self._prune(user, most, sealer)
            return Written(True, version + 1, pruned, bool(lifted) or len(kept) < len(added))

    def _sealer(self, user: str, generation: int, now: float) -> Sealer:
        """The user's key, making the user's row (at this generation, with a new salt) if there is none."""
        self.writer.execute("INSERT INTO users (user, version, seen, generation, size, salt) VALUES (?, 0, ?, ?, 0, ?) "
                            "ON CONFLICT DO NOTHING", (user, now, generation, new_salt()))
        return Sealer(self.secret, user, self.writer.execute("SELECT salt FROM users WHERE user = ?", (user,)).fetchone()[0])

    def _prune(self, user: str, most: int, sealer: Sealer) -> int:
        """The bound, in store.prune_key order: SQLite orders by prune_score (store.score_sql);
        the entries tied at the boundary's score are opened and ordered by spelling here."""
        db = self.writer
        gone = prune_count(db.execute("SELECT size FROM users WHERE user = ?", (user,)).fetchone()[0], most)
        if not gone:
            return 0
        score = score_sql("count", "seen")
        edge = db.execute(f"SELECT {score} AS s FROM entries WHERE user = ? ORDER BY s LIMIT 1 OFFSET ?",
                          (user, gone - 1)).fetchone()[0]
        below = [i for (i,) in db.execute(f"SELECT id FROM entries WHERE user = ? AND {score} < ?", (user, edge))]
        tied = db.execute(f"SELECT id, entry, count, seen FROM entries WHERE user = ? AND {score} = ?", (user, edge)).fetchall()
        tied.sort(key=lambda row: prune_key(sealer.open(row[1]), row[2], row[3]))
        db.executemany("DELETE FROM entries WHERE id = ?", [(i,) for i in below + [row[0] for row in tied[: gone - len(below)]]])
        db.execute("UPDATE users SET size = size - ? WHERE user = ?", (gone, user))
        return gone

    def forget(self, user: str) -> Forgotten:
        """Delete everything of the user, bump its generation and replace its salt."""
        with self._transaction():
            gone = self.writer.execute("DELETE FROM entries WHERE user = ?", (user,)).rowcount
            for table in ("suppressed", "writes"):
                self.writer.execute(f"DELETE FROM {table} WHERE user = ?", (user,))
            self.writer.execute("INSERT INTO users (user, version, seen, generation, size, salt) VALUES (?, 1, ?, 1, 0, ?) "
                                "ON CONFLICT (user) DO UPDATE SET version = version + 1, seen = excluded.seen, "
                                "generation = generation + 1, size = 0, salt = excluded.salt",
                                (user, time.time(), new_salt()))
            generation = self._stamp(self.writer, user)[0]
        return Forgotten(generation, gone, self.wipe(WIPE_WAIT))

    def forget_word(self, user: str, word: str) -> Forgotten:
        """Delete every entry holding the word (lower-cased) and suppress it."""
        with self._transaction():
            db = self.writer
            generation = self._stamp(db, user)[0]
            sealer = self._sealer(user, generation, time.time())
            rows = [i for i, e in db.execute("SELECT id, entry FROM entries WHERE user = ?", (user,))
                    if mentions(sealer.open(e), word)]
            db.executemany("DELETE FROM entries WHERE id = ?", [(i,) for i in rows])
            db.execute("UPDATE users SET version = version + 1, size = size - ? WHERE user = ?", (len(rows), user))
            version = self._stamp(db, user)[1]
            db.execute("INSERT INTO suppressed (user, digest, word, at) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT DO UPDATE SET at = excluded.at", (user, sealer.digest(word), sealer.seal(word), version))
        return Forgotten(generation, len(rows), self.wipe(WIPE_WAIT))

    def wipe(self, wait_s: float = 0.0) -> bool:
        """Move the WAL into the file and truncate it, so no file keeps what was deleted; False
        while readers of other programs hold it (waited for at most `wait_s`)."""
        deadline = time.monotonic() + wait_s
        with down("SQLite", ERRORS):
            self.writer.execute("PRAGMA busy_timeout = 20")  # readers are waited for here, not for 5 s per try
            try:
                while self.writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:
                    if time.monotonic() > deadline:
                        return False
                    time.sleep(0.01)
                return True
            finally:
                self.writer.execute("PRAGMA busy_timeout = 5000")

    def probe(self) -> None:
        """A real write (a page of the file), to learn whether writes work again after they failed."""
        with self._transaction():
            self.writer.execute("CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, data BLOB)")
            self.writer.execute("INSERT OR REPLACE INTO probe VALUES (1, zeroblob(4096))")

    def expire(self, now: float | None = None) -> int:
        """Delete users not seen for the time to live; returns how many. A forgotten user's
        tombstone stays for at least TOMBSTONE_DAYS (see the module doc of store.py)."""
        now = now or time.time()
        cutoff, tombstones = now - self.ttl, now - max(self.ttl, TOMBSTONE_DAYS * DAY)
        with self._transaction():
            gone = self.writer.execute("SELECT user FROM users WHERE seen < ? AND size > 0", (cutoff,)).fetchall()
            for table in ("entries", "suppressed", "writes"):
                self.writer.execute(f"DELETE FROM {table} WHERE user IN (SELECT user FROM users WHERE seen < ?)", (cutoff,))
            self.writer.execute("DELETE FROM users WHERE seen < ? AND (generation = 0 OR seen < ?)", (cutoff, tombstones))
            self.writer.execute("UPDATE users SET size = 0, version = version + 1, salt = randomblob(16) "
                                "WHERE seen < ? AND size > 0", (cutoff,))
        if gone:
            self.wipe(WIPE_WAIT)
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
