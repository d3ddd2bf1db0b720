"""The users layer (service/server/users/layer.py) driven directly: real stores, a fake clock, no
server process and no sleeping for time to pass. Each D-number is a row of the table in the
issue that found the defect; the end-to-end regressions are in test_user_store.py."""
import asyncio
import math

import pytest

from helpers import SECRET, Redis, at, invented
from service.server.users import layer as users_mod
from service.server.errors import Unavailable
from service.server.metrics import Metrics
from service.server.users.redis import RedisStore
from service.server.users.sqlite import SqliteStore
from service.server.users.layer import Outcome, Users
from service.server.users.store import StoreDown


class FakeClock:
    """Time that moves only when a test says so."""

    def __init__(self):
        self.t = 1000.0

    def monotonic(self) -> float:
        return self.t

    def now(self) -> float:
        return 1.7e9 + self.t

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture(params=["sqlite", "redis"])
def open_store(request, tmp_path):
    """A function making store objects on one shared store (as several processes would)."""
    if request.param == "sqlite":
        yield lambda: SqliteStore(tmp_path / "users.sqlite3", 3600, SECRET)
        return
    r = Redis()
    yield lambda: RedisStore(r.url, 3600)
    r.stop()


def layer(store, max_users: int = 100, max_entries: int = 50000) -> tuple[Users, FakeClock, Metrics]:
    clock, metrics = FakeClock(), Metrics()
    return Users(store, metrics, max_users, max_entries, clock), clock, metrics


def sample(metrics: Metrics, name: str, **labels) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def words(model) -> set[str]:
    return set(model.words) if model else set()


def run(coroutine):
    return asyncio.run(coroutine)


def test_learning_outlives_the_cache_of_models(open_store):
    """D1: with a cache of 10 users, 190 of 200 acknowledged learns were gone after a restart:
    eviction dropped the model that the learning was written into."""
    async def go():
        users, _, _ = layer(open_store(), max_users=10)
        for n in range(200):
            await users.model(f"user{n}")  # loaded, and evicted again by the next ones
            assert (await users.learn(f"user{n}", f"hello {invented(n)}")).outcome == Outcome.LEARNED
        await users.close()
    run(go())
    store = open_store()
    assert all(invented(n) in store.load(f"user{n}").entries for n in range(200))


def test_learning_shows_at_once_and_the_write_keeps_the_model_current(open_store):
    async def go():
        users, clock, _ = layer(open_store())
        assert words(await users.model("u")) == set()
        learned = await users.learn("u", "Zorblax is here")
        assert learned.words == 3 and learned.outcome == Outcome.LEARNED
        assert "zorblax" in words(await users.model("u"))
        await users.flush()
        cached = users.cache["u"]
        assert cached.version == users.store.stamp("u")[1]  # our own write: no reload needed
        assert open_store().load("u").entries["Zorblax"][0] == 1
        await users.close()
    run(go())


def test_a_model_serves_a_keystroke_only_if_checked_within_the_second(open_store):
    """D2: another process forgot the user, yet this one suggested the old words for good."""
    async def go():
        users, clock, _ = layer(open_store())
        await users.learn("u", "Zorblax is here")
        await users.flush()
        assert "zorblax" in words(await users.model("u"))
        open_store().forget("u")                    # another process
        clock.advance(users_mod.REFRESH_EVERY / 2)
        assert "zorblax" in words(await users.model("u"))  # within the second: not checked yet
        clock.advance(users_mod.REFRESH_EVERY)
        assert words(await users.model("u")) == set()       # checked: forgotten here too
        await users.learn("u", "something new")
        await users.flush()
        assert "zorblax" not in open_store().load("u").entries
        await users.close()
    run(go())


def test_a_load_in_flight_during_a_forget_never_brings_the_old_words_back(open_store):
    """D3: a big user's load, begun before this process's Forget, landed after it."""
    big = {invented(n, "Qz"): n % 5 + 1 for n in range(20000)}
    for attempt in range(5):
        user = f"u{attempt}"
        open_store().write(user, 0, 0, at(big, 1.7e9), 50000)

        async def go():
            users, clock, _ = layer(open_store())
            loading = asyncio.ensure_future(users.model(user))
            await asyncio.sleep(0)  # the load has started on the reader thread
            await users.forget(user)
            await loading
            clock.advance(0.1)
            assert not words(await users.model(user)) & {w.lower() for w in big}
            await users.close()
        run(go())


def test_learning_taken_before_a_forget_elsewhere_is_not_written_after_it(open_store):
    """D4: a Learn on one server, a Forget on another 50 ms later: the message came back."""
    async def go():
        users, _, metrics = layer(open_store())
        assert (await users.learn("u", "Zorblax was here")).outcome == Outcome.LEARNED
        open_store().forget("u")  # another process, before this one's write-behind
        await users.flush()
        assert open_store().load("u").entries == {}
        assert sample(metrics, "nextword_user_messages_dropped_total", reason="forgotten") == 1
        assert (await users.learn("u", "after the forget")).outcome == Outcome.LEARNED
        await users.flush()
        assert "forget" in open_store().load("u").entries  # learning after the Forget is kept
        await users.close()
    run(go())


def test_a_forget_that_fails_forgets_nothing_and_loses_nothing():
    """D8: Forget while Redis was down answered "nothing was forgotten" but dropped the
    user's acknowledged, not yet written learning."""
    r = Redis()
    try:
        async def go():
            users, _, _ = layer(RedisStore(r.url, 3600))
            assert (await users.learn("u", "Zorblax was here")).outcome == Outcome.LEARNED
            r.stop()
            with pytest.raises(Unavailable):
                await users.forget("u")
            assert (await users.learn("u", "while down")).outcome == Outcome.STORE_DOWN
            await users.flush()  # fails: kept for the next try
            r.start()
            await users.flush()
            assert "Zorblax" in RedisStore(r.url, 3600).load("u").entries
            await users.close()
        run(go())
    finally:
        r.stop()


def test_a_heavy_learner_is_told_busy_and_others_are_not(open_store, monkeypatch):
    """D10: one user sending 8 KB messages got words=0 "store down" answers with the store up."""
    big = " ".join(invented(n, "w") for n in range(1300))  # ~8 KB; its first 200 words read: ~600 entries

    async def go():
        users, _, metrics = layer(open_store())
        outcomes = [(await users.learn("heavy", big)).outcome for _ in range(20)]
        assert outcomes[0] == Outcome.LEARNED and Outcome.BUSY in outcomes
        reads, read = [], users_mod.message_entries
        monkeypatch.setattr(users_mod, "message_entries", lambda m, *judge: reads.append(m) or read(m, *judge))
        # told BUSY: even a short message is refused unread until the next write
        assert (await users.learn("heavy", "ok")).outcome == Outcome.BUSY and reads == []
        outcomes.append(Outcome.BUSY)
        assert (await users.learn("light", "see you at eight")).outcome == Outcome.LEARNED
        assert sample(metrics, "nextword_user_messages_dropped_total", reason="busy") == outcomes.count(Outcome.BUSY)
        assert sample(metrics, "nextword_user_messages_dropped_total", reason="store_down") == 0
        await users.flush()
        assert (await users.learn("heavy", big)).outcome == Outcome.LEARNED  # written: room again
        await users.close()
    run(go())


def test_with_the_store_down_a_keystroke_goes_on_without_personalization():
    r = Redis()
    try:
        async def go():
            users, clock, metrics = layer(RedisStore(r.url, 3600))
            await users.learn("u", "Zorblax was here")
            await users.flush()
            assert "zorblax" in words(await users.model("u"))
            r.stop()
            clock.advance(users_mod.REFRESH_EVERY * 2)
            assert await users.model("u") is None   # cannot be checked: not shown (a Forget elsewhere could not be seen)
            assert await users.model("newcomer") is None
            assert sample(metrics, "nextword_user_store_up") == 0
            r.start()  # an empty Redis (this one keeps nothing on disk), answering again
            assert await users.model("u") is None  # within a second of a failure keystrokes do not ask again
            clock.advance(users_mod.RETRY_EVERY)
            assert await users.model("u") is not None
            assert sample(metrics, "nextword_user_store_up") == 1
            await users.close()
        run(go())
    finally:
        r.stop()


def test_a_word_forgotten_alone_leaves_every_process(open_store):
    async def go():
        a, clock_a, _ = layer(open_store())
        b, clock_b, _ = layer(open_store())
        await a.learn("u", "Zorblax and Quux went home")
        await a.flush()
        assert "zorblax" in words(await b.model("u"))
        await a.forget_word("u", "Zorblax")
        assert "zorblax" not in words(await a.model("u"))
        clock_b.advance(users_mod.REFRESH_EVERY * 2)
        model = await b.model("u")
        assert "zorblax" not in words(model) and "quux" in words(model) and "zorblax" in model.suppressed
        assert not [e for e in model.entries if "zorblax" in e.lower()]
        await a.close()
        await b.close()
    run(go())


def test_drain_writes_what_is_pending(open_store):
    async def go():
        users, _, _ = layer(open_store())
        for n in range(30):
            await users.learn(f"u{n}", f"{invented(n)} again")
        await users.close()
    run(go())
    assert all(open_store().load(f"u{n}").entries for n in range(30))


def test_a_stale_cached_model_is_read_again(open_store):
    """The users layer marks a model stale (checked = -inf) when another process wrote in between."""
    async def go():
        users, _, _ = layer(open_store())
        await users.model("u")
        open_store().write("u", 0, 0, at({"Elsewhere": 1}, 1.7e9), 50000)  # another process
        await users.learn("u", "here")
        await users.flush()  # version jumped by two: ours was not the only write
        assert users.cache["u"].checked == -math.inf
        assert "elsewhere" in words(await users.model("u"))
        await users.close()
    run(go())


def test_a_word_sent_again_after_its_removal_is_learned(open_store):
    """N1: "call X now" learned, at once Forget(word=X), then "lunch with X" twice: both
    LEARNED, yet X stayed suppressed with count 0 (the later learning shared a batch with the
    earlier and was dropped with it)."""
    async def go():
        users, _, _ = layer(open_store())
        await users.learn("u", "meet Xanthe later")
        await users.flush()
        await users.learn("u", "call Xanthe now")     # waiting to be written when the word is removed
        await users.forget_word("u", "Xanthe")
        for _ in range(2):
            assert (await users.learn("u", "lunch with Xanthe")).outcome == Outcome.LEARNED
        await users.flush()
        snapshot = open_store().load("u")
        assert snapshot.entries["Xanthe"][0] == 2 and "xanthe" not in snapshot.suppressed
        assert "call xanthe" not in snapshot.entries  # what was sent before the removal stays out
        await users.close()
    run(go())


def test_after_a_failed_write_learning_is_store_down_until_a_write_succeeds(tmp_path):
    """N7: on a full disk 2,000 of 2,000 Learns answered LEARNED while every write failed, and
    the log said the store was down and back twice a second."""
    store = SqliteStore(tmp_path / "users.sqlite3", 3600, SECRET)
    pages = store.writer.execute("PRAGMA page_count").fetchone()[0]
    long = " ".join(invented(n, "long") for n in range(300))  # needs new pages of the file

    async def go():
        users, clock, metrics = layer(store)
        assert (await users.learn("u", "before the disk filled " + long)).outcome == Outcome.LEARNED
        store.writer.execute(f"PRAGMA max_page_count = {pages}")  # the file may not grow: SQLITE_FULL, as a full disk
        await users.flush()
        assert not users.writable and sample(metrics, "nextword_user_store_writable") == 0
        outcomes = [(await users.learn("u", f"message {invented(n)}")).outcome for n in range(20)]
        assert outcomes == [Outcome.STORE_DOWN] * 20
        assert await users.model("u") is not None  # reads still work: suggestions stay personal
        clock.advance(users_mod.RETRY_EVERY)
        await users.flush()  # the queued write fails again; nothing changes
        assert (await users.learn("u", "still full")).outcome == Outcome.STORE_DOWN
        store.writer.execute("PRAGMA max_page_count = 1073741823")  # room again
        clock.advance(users_mod.RETRY_EVERY)
        await users.flush()
        assert users.writable and (await users.learn("u", "room again")).outcome == Outcome.LEARNED
        await users.close()
        assert sample(metrics, "nextword_user_store_errors_total", operation="write") == 2
    run(go())
    entries = SqliteStore(tmp_path / "users.sqlite3", 3600, SECRET).load("u").entries
    assert "filled" in entries and "room" in entries and not [e for e in entries if e.startswith("zq")]


def test_with_nothing_queued_a_probe_finds_writes_working_again():
    r = Redis()
    try:
        async def go():
            users, clock, _ = layer(RedisStore(r.url, 3600))
            r.stop()
            with pytest.raises(Unavailable):
                await users.forget("u")  # a write that failed, with no learning queued
            assert not users.writable and (await users.learn("u", "hello")).outcome == Outcome.STORE_DOWN
            r.start()
            clock.advance(users_mod.RETRY_EVERY)
            await users.flush()  # nothing to write: the probe writes
            assert users.writable and (await users.learn("u", "back")).outcome == Outcome.LEARNED
            await users.close()
        run(go())
    finally:
        r.stop()


def test_a_drain_with_the_store_down_keeps_trying_then_says_what_was_lost():
    """D8: SIGTERM while Redis was down lost learning answered LEARNED."""
    r = Redis()
    try:
        async def go():  # on the real clock: a drain is a matter of time
            metrics = Metrics()
            users = Users(RedisStore(r.url, 3600), metrics, 100, 50000)
            for n in range(3):
                assert (await users.learn(f"u{n}", "Zorblax was here")).outcome == Outcome.LEARNED
            r.stop()
            closing = asyncio.ensure_future(users.close(within=5.0))
            for _ in range(20):
                await asyncio.sleep(0.02)
            r.start()  # back within the drain: written after all
            await closing
            assert sample(metrics, "nextword_user_messages_dropped_total", reason="shutdown") == 0
            assert all("Zorblax" in RedisStore(r.url, 3600).load(f"u{n}").entries for n in range(3))

            metrics = Metrics()
            users = Users(RedisStore(r.url, 3600), metrics, 100, 50000)
            await users.learn("v", "Quuxle was here")
            r.stop()
            await users.close(within=0.3)  # down for the whole drain: counted and said
            assert sample(metrics, "nextword_user_messages_dropped_total", reason="shutdown") == 1
        run(go())
    finally:
        r.stop()


class LandsThenTimesOut:
    """A store whose first write lands and then times out, as a slow Redis script did (D10)."""

    def __init__(self, store):
        self.store, self.failed = store, False

    def __getattr__(self, name):
        return getattr(self.store, name)

    def write(self, *args):
        written = self.store.write(*args)
        if not self.failed:
            self.failed = True
            raise StoreDown("Redis: TimeoutError")
        return written


def test_a_write_that_landed_but_timed_out_is_counted_once(open_store):
    """D10: timed-out writes were applied, then retried: every entry counted twice."""
    async def go():
        users, clock, _ = layer(LandsThenTimesOut(open_store()))
        await users.learn("u", "Zorblax was here")
        await users.flush()          # lands, then "times out": queued again under the same id
        clock.advance(users_mod.RETRY_EVERY)
        await users.flush()          # the retry: applied once
        assert open_store().load("u").entries["Zorblax"][0] == 1
        await users.close()
    run(go())
