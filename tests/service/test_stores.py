"""The two user stores, called directly: the same behaviour from SQLite and a real Redis."""
import time

import pytest

from helpers import Redis
from service.server.stores import RedisStore, SqliteStore, StoreDown


@pytest.fixture(params=["sqlite", "redis"])
def open_store(request, tmp_path):
    """A function making store objects on one shared store (as several processes would)."""
    if request.param == "sqlite":
        yield lambda ttl=3600: SqliteStore(tmp_path / "users.sqlite3", ttl)
        return
    r = Redis()
    yield lambda ttl=3600: RedisStore(r.url, ttl)
    r.stop()


def test_writes_from_two_processes_add_up_and_bump_the_version(open_store):
    a, b = open_store(), open_store()
    assert a.load("u") == ({}, 0)
    assert a.write("u", {"hi": 2, "<s> hi": 2}, [], 100.0) == 1
    assert b.write("u", {"hi": 1}, [], 200.0) == 2
    entries, version = a.load("u")
    assert entries == {"hi": (3, 200.0), "<s> hi": (2, 100.0)} and version == 2 == b.version("u")
    a.write("u", {}, ["<s> hi"], 300.0)
    assert set(b.load("u")[0]) == {"hi"}
    assert a.load("someone else") == ({}, 0)


def test_forget_leaves_nothing(open_store):
    store = open_store()
    store.write("u", {"hi": 1, "zork": 4}, [], time.time())
    store.forget("u")
    assert store.load("u") == ({}, 0)


def test_expiry_deletes_users_who_sent_nothing_for_the_time_to_live(open_store):
    store = open_store(ttl=1)
    store.write("old", {"hi": 1}, [], time.time())
    time.sleep(2.2)
    store.write("new", {"hi": 1}, [], time.time())
    store.expire()  # SQLite sweeps; Redis has expired the keys itself
    assert store.load("old") == ({}, 0)
    assert store.load("new")[0] == {"hi": (1, pytest.approx(time.time(), abs=5))}


def test_an_unreachable_redis_is_store_down_without_details():
    store = RedisStore("redis://127.0.0.1:1/0", 60)
    with pytest.raises(StoreDown) as e:
        store.load("u")
    assert str(e.value).startswith("Redis: ")


def _open_at(path: str, start: float) -> str:
    """In a process of its own: open the store when the clock says, as workers starting together do."""
    from pathlib import Path

    while time.time() < start:
        pass
    try:
        SqliteStore(Path(path), 3600).write("u", {"hi": 1}, [], start)
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
            assert SqliteStore(tmp_path / f"users-{trial}.sqlite3", 3600).load("u")[0]["hi"][0] == 4
