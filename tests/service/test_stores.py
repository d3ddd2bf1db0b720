"""The two user stores, called directly: the same behaviour from SQLite and a real Redis."""
import random
import sqlite3
import time

import pytest

from helpers import SECRET, Redis, at, invented
from model.engine.personal import MAX_COUNT
from service.server.users.redis import RedisStore
from service.server.users.sqlite import SqliteStore
from service.server.users.store import PRUNE_STEP, Snapshot, StoreDown

EMPTY = Snapshot({}, set(), 0, 0)


@pytest.fixture(params=["sqlite", "redis"])
def open_store(request, tmp_path):
    """A function making store objects on one shared store (as several processes would)."""
    if request.param == "sqlite":
        yield lambda ttl=3600: SqliteStore(tmp_path / "users.sqlite3", ttl, SECRET)
        return
    r = Redis()
    yield lambda ttl=3600: RedisStore(r.url, ttl)
    r.stop()


def test_writes_from_two_processes_add_up_and_bump_the_version(open_store):
    a, b = open_store(), open_store()
    assert a.load("u") == EMPTY and a.stamp("u") == (0, 0)
    assert a.write("u", 0, 0, at({"hi": 2, "<s> hi": 2}, 100.0), 50).version == 1
    assert b.write("u", 0, 0, at({"hi": 1}, 200.0), 50).version == 2
    assert a.load("u") == Snapshot({"hi": (3, 200.0), "<s> hi": (2, 100.0)}, set(), 0, 2)
    assert b.stamp("u") == (0, 2)
    assert a.load("someone else") == EMPTY


def test_a_write_begun_before_a_forget_is_refused_after_it(open_store):
    a, b = open_store(), open_store()
    a.write("u", 0, 0, at({"hi": 1, "zork": 4}, time.time()), 50)
    forgotten = b.forget("u")  # b forgets while a still holds learning taken in generation 0
    assert forgotten.generation == 1 and forgotten.entries == 2 and forgotten.wiped and a.load("u") == Snapshot({}, set(), 1, a.stamp("u")[1])
    late = a.write("u", 0, 0, at({"zork": 1}, time.time()), 50)
    assert not late.kept and a.load("u").entries == {}
    assert a.write("u", 1, 0, at({"hi": 1}, time.time()), 50).kept  # learning taken after the forget is kept
    assert b.forget("u").generation == 2  # the generation never goes back


def test_the_bound_holds_whoever_writes(open_store):
    a, b = open_store(), open_store()
    for n in range(30):
        (a if n % 2 else b).write("u", 0, 0, at({f"w{n}": 1 + n % 3}, 1000.0 + n), 20)
    entries = a.load("u").entries
    assert len(entries) <= 20
    assert "w29" in entries and "w0" not in entries  # the newest stay, the oldest went


def test_a_forgotten_word_stays_gone_until_sent_again(open_store):
    a, b = open_store(), open_store()
    a.write("u", 0, 0, at({"Zork": 2, "hi zork": 1, "<s> hi": 1, "hi": 1}, 100.0), 50)
    before = a.stamp("u")[1]
    assert b.forget_word("u", "zork").entries == 2
    snapshot = a.load("u")
    assert set(snapshot.entries) == {"<s> hi", "hi"} and snapshot.suppressed == {"zork"}
    a.write("u", 0, before, at({"Zork": 1, "hi": 1}, 200.0), 50)  # learned before the forget, written after
    assert "Zork" not in a.load("u").entries and a.load("u").suppressed == {"zork"}
    a.write("u", 0, a.stamp("u")[1], at({"Zork": 1}, 300.0), 50)  # sent again
    assert "Zork" in a.load("u").entries and a.load("u").suppressed == set()


def test_expiry_deletes_users_who_sent_nothing_for_the_time_to_live(open_store):
    store = open_store(ttl=1)
    store.write("old", 0, 0, at({"hi": 1}, time.time()), 50)
    time.sleep(2.2)
    store.write("new", 0, 0, at({"hi": 1}, time.time()), 50)
    store.expire()  # SQLite sweeps; Redis has expired the keys itself
    assert store.load("old").entries == {}
    assert store.load("new").entries == {"hi": (1, pytest.approx(time.time(), abs=5))}


def test_an_unreachable_redis_is_store_down_without_details():
    store = RedisStore("redis://127.0.0.1:1/0", 60)
    with pytest.raises(StoreDown) as e:
        store.load("u")
    assert str(e.value).startswith("Redis: ")


def test_no_file_holds_what_was_forgotten(tmp_path):
    """D5: a forgotten user's words were still in users.sqlite3-wal 30 s after Forget."""
    store, other = SqliteStore(tmp_path / "users.sqlite3", 3600, SECRET), SqliteStore(tmp_path / "users.sqlite3", 3600, SECRET)
    secrets = {f"Qwzx{n}ylf": 1 for n in range(300)}
    store.write("u", 0, 0, at(secrets, time.time()), 50000)
    store.write("v", 0, 0, at({"Plonkterm": 1, "<s> plonkterm": 1}, time.time()), 50000)
    other.load("u")  # another process has read the user too
    store.forget("u")
    store.forget_word("v", "plonkterm")
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"Qwzx" not in on_disk and b"qwzx" not in on_disk
    # a word forgotten alone: its entries are gone; what stays is its suppression, the word lower-cased
    assert b"Plonkterm" not in on_disk and b"<s> plonkterm" not in on_disk
    assert (tmp_path / "users.sqlite3-wal").stat().st_size == 0


def test_a_file_of_the_first_schema_is_brought_up_to_date(tmp_path):
    path = tmp_path / "users.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript("""
            CREATE TABLE entries (user TEXT, entry TEXT, count INTEGER, seen REAL, PRIMARY KEY (user, entry)) WITHOUT ROWID;
            CREATE TABLE users (user TEXT PRIMARY KEY, version INTEGER, seen REAL) WITHOUT ROWID;
            INSERT INTO entries VALUES ('u', 'hi', 2, 100.0), ('u', '<s> hi', 2, 100.0);
            INSERT INTO users VALUES ('u', 7, 100.0);
        """)
    store = SqliteStore(path, 3600, SECRET)
    assert store.load("u") == Snapshot({"hi": (2, 100.0), "<s> hi": (2, 100.0)}, set(), 0, 7)
    for n in range(5):
        store.write("u", 0, 7, at({f"w{n}": 1}, 200.0 + n), 4)
    assert len(store.load("u").entries) <= 4  # the size carried over counts toward the bound


def _open_at(path: str, start: float) -> str:
    """In a process of its own: open the store when the clock says, as workers starting together do."""
    from pathlib import Path

    while time.time() < start:
        pass
    try:
        SqliteStore(Path(path), 3600, SECRET).write("u", 0, 0, at({"hi": 1}, start), 50)
        return "ok"
    except Exception as e:  # what failed, for the assertion message
        return f"{type(e).__name__}: {e}"


def test_processes_opening_a_new_sqlite_file_together_all_open_it(tmp_path):
    """Switching a new file to WAL takes a lock SQLite does not wait for: before the retry,
    about one start in two of four processes at once failed with "database is locked"."""
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(4) as pool:
        for trial in range(6):
            path, start = str(tmp_path / f"users-{trial}.sqlite3"), time.time() + 0.3
            assert pool.starmap(_open_at, [(path, start)] * 4) == ["ok"] * 4
            assert SqliteStore(tmp_path / f"users-{trial}.sqlite3", 3600, SECRET).load("u").entries["hi"][0] == 4


def test_counts_saturate_and_imported_huge_counts_do_not_overflow(open_store):
    """N3: a word imported twice with count 4,294,967,295 made Export fail until a full Forget."""
    store = open_store()
    for _ in range(2):
        store.write("u", 0, 0, at({"Zork": 4_294_967_295}, 100.0), 50)
    assert store.load("u").entries["Zork"] == (MAX_COUNT, 100.0)


def test_a_retried_write_is_counted_once(open_store):
    """D10: a write that timed out on Redis had landed, and its retry counted every entry twice."""
    store = open_store()
    first = store.write("u", 0, 0, at({"hi": 1, "zork": 2}, 100.0), 50, "write-1")
    again = store.write("u", 0, 0, at({"hi": 1, "zork": 2}, 100.0), 50, "write-1")
    assert first.kept and not first.repeated and again.kept and again.repeated
    assert store.load("u").entries == {"hi": (1, 100.0), "zork": (2, 100.0)}
    assert store.write("u", 0, 0, at({"hi": 1}, 100.0), 50, "write-2").version == first.version + 1


def test_sqlite_and_redis_prune_the_same_entries(tmp_path):
    """One prune rule (store.prune_key), stated once: both stores keep the same entries."""
    r = Redis()
    try:
        stores = [SqliteStore(tmp_path / "users.sqlite3", 3600, SECRET), RedisStore(r.url, 3600)]
        rng = random.Random(7)
        for n in range(40):  # days, counts and spellings that tie in every way the rule orders by
            batch = {f"w{rng.randrange(300)}": rng.randrange(1, 4) for _ in range(25)}
            when = 86400.0 * rng.randrange(3) + rng.randrange(3)
            for store in stores:
                store.write("u", 0, 0, at(batch, when), 120)
        kept = [store.load("u").entries for store in stores]
        assert kept[0] == kept[1] and 100 <= len(kept[0]) <= 120
    finally:
        r.stop()


def test_redis_prunes_in_bounded_steps(tmp_path):
    """D10: Redis's prune script sorted all of a heavy user's entries at once (1-5 s)."""
    r = Redis()
    try:
        store, steps = RedisStore(r.url, 3600), []
        prune = store._prune
        store._prune = lambda keys, args: steps.append(int(args[0])) or prune(keys=keys, args=args)
        store.write("u", 0, 0, at({invented(n): 1 for n in range(9000)}, 100.0), 10000)
        written = store.write("u", 0, 0, at({invented(n, "x"): 1 for n in range(9000)}, 3 * 86400.0), 10000)
        entries = store.load("u").entries
        assert 9000 <= len(entries) <= 10000 and written.pruned == sum(steps) == 18000 - len(entries)
        assert max(steps) <= PRUNE_STEP and sum(e.startswith("x") for e in entries) == 9000  # the older day went
    finally:
        r.stop()


def test_no_interior_page_keeps_a_forgotten_word(tmp_path):
    """D5: with many users in the file, forgotten words stayed in it: a B-tree's interior pages
    keep copies of the keys dividing its leaves, and the first schemas had words in keys."""
    store = SqliteStore(tmp_path / "users.sqlite3", 3600, SECRET)
    for u in range(300):
        words = {invented(u * 200 + n, "Vexqzl" if u == 150 else "ab"): 1 for n in range(200)}
        store.write(f"user{u:04d}", 0, 0, at(words, time.time()), 50000)
    store.forget("user0150")
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir())  # (6 letters: no chance match in digests)
    assert b"Vexqzl" not in on_disk and b"vexqzl" not in on_disk


def test_a_reader_holding_the_file_delays_the_wipe_not_the_answer(tmp_path):
    """N4: with a read transaction open elsewhere (a backup, a sqlite3 shell), Forget answered
    UNAVAILABLE "nothing was forgotten" after 5 s, yet the rows were gone and the words stayed
    in the write-ahead log until a later Forget."""
    store = SqliteStore(tmp_path / "users.sqlite3", 3600, SECRET)
    store.write("u", 0, 0, at({"Qwzxylf": 1, "hi qwzxylf": 1}, time.time()), 50)
    reader = sqlite3.connect(tmp_path / "users.sqlite3")
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM entries").fetchone()  # holds a snapshot of the file
    forgotten = store.forget("u")
    assert forgotten.entries == 2 and not forgotten.wiped  # deleted, and it says the log still holds it
    assert store.load("u").entries == {} and not store.wipe()
    reader.execute("COMMIT")
    reader.close()
    assert store.wipe()
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"Qwzxylf" not in on_disk and b"qwzxylf" not in on_disk


def test_a_file_of_the_second_schema_is_rebuilt_without_its_old_pages(tmp_path):
    path = tmp_path / "users.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript("""
            CREATE TABLE entries (user TEXT, entry TEXT, count INTEGER, seen REAL, PRIMARY KEY (user, entry)) WITHOUT ROWID;
            CREATE TABLE users (user TEXT PRIMARY KEY, version INTEGER, seen REAL, generation INTEGER NOT NULL DEFAULT 0,
                                size INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
            CREATE TABLE suppressed (user TEXT, word TEXT, at INTEGER, PRIMARY KEY (user, word)) WITHOUT ROWID;
            INSERT INTO entries VALUES ('u', 'Plonk', 2, 100.0), ('u', 'hi plonk', 2, 100.0), ('v', 'Vexqa', 1, 100.0);
            INSERT INTO users VALUES ('u', 7, 100.0, 2, 2), ('v', 1, 100.0, 0, 1);
            INSERT INTO suppressed VALUES ('u', 'zork', 5);
        """)
    store = SqliteStore(path, 3600, SECRET)
    assert store.load("u") == Snapshot({"Plonk": (2, 100.0), "hi plonk": (2, 100.0)}, {"zork"}, 2, 7)
    store.forget("v")
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"Vexqa" not in on_disk  # the old tables' pages went with the rebuild
