"""The data plane (service/server/dataplane.py) driven directly: the shipped model in a real
onnxruntime session and a real SQLite store, no gRPC, no server process."""
import asyncio

import pytest

from conftest import SHIPPED_MODEL
from model.engine.personal import MIN_COUNT
from model.engine.runtime import Runtime
from service.server.errors import (
    Busy,
    InvalidInput,
    PersonalOff,
    Unavailable,
    Unsigned,
    WrongSignature,
)
from service.server.metrics import Metrics
from service.server.predictor import Predictor
from service.server.security import UserKeys
from service.server.dataplane import Ask, Change, DataPlane
from service.server.settings import Settings
from service.server.users.sqlite import SqliteStore
from service.server.users.layer import Outcome, Users
from service.userkeys import sign_user

SECRET = b"a secret of this test deployment"


@pytest.fixture(scope="module")
def runtime():
    return Runtime(SHIPPED_MODEL, "cpu")


def plane_on(runtime, tmp_path, users: bool = True, max_streams: int = 4):
    """A function making the data plane inside a running event loop."""
    async def make() -> DataPlane:
        metrics, settings = Metrics(), Settings(max_streams=max_streams)
        predictor = Predictor(runtime, settings, metrics)
        await predictor.start()
        if not users:
            return DataPlane(predictor, metrics, max_streams, settings.max_text_chars)
        store = Users(SqliteStore(tmp_path / "users.sqlite3", 3600, SECRET), metrics, 10, 1000)
        return DataPlane(predictor, metrics, max_streams, settings.max_text_chars, store, UserKeys("signed", SECRET))
    return make


def texts(answer) -> list[str]:
    return [c.text for c in answer.strip.candidates]


def test_a_typing_session_follows_text_and_edits(runtime, tmp_path):
    async def go():
        plane = await plane_on(runtime, tmp_path)()
        with plane.typing() as typing:
            assert texts(await typing.keystroke(Change(text="how are yo"), Ask()))[0] == "you"
            await typing.keystroke(Change(edit=(2, "")), Ask())
            assert typing.text == "how are "
            with pytest.raises(InvalidInput):
                await typing.keystroke(Change(edit=(99, "")), Ask())
            with pytest.raises(InvalidInput):
                await typing.keystroke(Change(), Ask())
            unary = await plane.predict("how are ", Ask(k=5))
            streamed = await typing.keystroke(Change(edit=(0, "")), Ask(k=5))
            assert texts(unary) == texts(streamed)  # a stream answers as a call does
    asyncio.run(go())


def test_send_learns_for_the_user_and_starts_the_next_message(runtime, tmp_path):
    key = sign_user(SECRET, "ann")

    async def go():
        plane = await plane_on(runtime, tmp_path)()
        with plane.typing() as typing:
            for _ in range(MIN_COUNT):  # a word the model does not know: suggested once sent that often
                assert "Anneke" not in texts(await plane.predict("with Ann", Ask(user=key)))
                await typing.keystroke(Change(text="dinner with Anneke"), Ask(user=key))
                answer = await typing.keystroke(Change(send=True), Ask(user=key))
                assert answer.learned.outcome == Outcome.LEARNED and answer.learned.words == 3
                assert typing.text == "" and all(not c.completion for c in answer.strip.candidates)
            no_user = await typing.keystroke(Change(send=True), Ask())
            assert no_user.learned is None  # nobody to learn for
        assert texts(await plane.predict("with Ann", Ask(user=key)))[0] == "Anneke"
        assert "Anneke" not in texts(await plane.predict("with Ann", Ask(k=10)))
    asyncio.run(go())


def test_user_keys_are_checked_before_anything_is_read_or_learned(runtime, tmp_path):
    async def go():
        plane = await plane_on(runtime, tmp_path)()
        for key, error in (("ann", Unsigned), ("ann.", Unsigned), (sign_user(b"another secret", "ann"), WrongSignature),
                           ("x" * 300, InvalidInput)):
            for call in (plane.learn(key, "hi"), plane.predict("hi", Ask(user=key)), plane.forget(key)):
                with pytest.raises(error):
                    await call
        with pytest.raises(InvalidInput):
            await plane.learn("", "hi")  # learning needs a user
        off = await plane_on(runtime, tmp_path, users=False)()
        with pytest.raises(PersonalOff):
            await off.predict("hi", Ask(user=sign_user(SECRET, "ann")))
        assert texts(await off.predict("how are yo", Ask()))  # without a user, as ever
    asyncio.run(go())


def test_draining_refuses_new_calls_then_ends_open_sessions(runtime, tmp_path):
    async def go():
        plane = await plane_on(runtime, tmp_path)()
        with plane.typing() as typing:
            await typing.keystroke(Change(text="hi"), Ask())
            never = asyncio.get_running_loop().create_future()  # a client that types nothing more
            waiting = asyncio.ensure_future(typing.next(never))
            plane.drain()
            for call in (plane.predict("hi", Ask()), plane.learn("k.s", "hi")):
                with pytest.raises(Unavailable):
                    await call
            with pytest.raises(Unavailable), plane.typing():
                pass
            assert texts(await typing.keystroke(Change(text="how are yo"), Ask()))  # an open session goes on
            await asyncio.sleep(0.01)
            assert not waiting.done()
            plane.end_streams()
            with pytest.raises(Unavailable):
                await asyncio.wait_for(waiting, 1.0)  # ended at once, not after the grace period
            assert never.cancelled()
            with pytest.raises(Unavailable):
                await typing.keystroke(Change(text="hi there"), Ask())
    asyncio.run(go())


def test_a_session_waits_for_its_next_keystroke_until_streams_end(runtime, tmp_path):
    async def go():
        plane = await plane_on(runtime, tmp_path)()
        with plane.typing() as typing:
            async def keystroke():
                await asyncio.sleep(0.01)
                return "next"
            assert await typing.next(keystroke()) == "next"  # a keystroke that comes is the next
            never = asyncio.get_running_loop().create_future()
            waiting = asyncio.ensure_future(typing.next(never))
            await asyncio.sleep(0.05)
            assert not waiting.done()  # it waits as long as the typist takes
            plane.drain()
            plane.end_streams()
            with pytest.raises(Unavailable):
                await waiting  # ended at once when the server ends its streams
            assert never.cancelled()  # and the wait for the keystroke is given up
    asyncio.run(go())


def test_typing_sessions_are_bounded(runtime, tmp_path):
    async def go():
        plane = await plane_on(runtime, tmp_path, max_streams=2)()
        with plane.typing(), plane.typing():
            with pytest.raises(Busy), plane.typing():
                pass
        with plane.typing():  # closed ones make room
            assert plane.open_streams == 1
    asyncio.run(go())


def test_learn_checks_the_length_as_predict_does(runtime, tmp_path):
    async def go():
        plane = await plane_on(runtime, tmp_path)()
        too_long = "a" * (Settings().max_text_chars + 1)
        for call in (plane.learn(sign_user(SECRET, "ann"), too_long), plane.predict(too_long, Ask())):
            with pytest.raises(InvalidInput, match="characters long"):
                await call
    asyncio.run(go())


def test_incognito_reads_and_learns_nothing_of_the_user(runtime, tmp_path):
    key = sign_user(SECRET, "ann")

    async def go():
        plane = await plane_on(runtime, tmp_path)()
        for _ in range(MIN_COUNT):
            await plane.learn(key, "dinner with Anneke")
        assert texts(await plane.predict("with Ann", Ask(user=key)))[0] == "Anneke"
        private = Ask(user=key, incognito=True)
        assert "Anneke" not in texts(await plane.predict("with Ann", private))
        with plane.typing() as typing:
            await typing.keystroke(Change(text="meet Quibblecon"), private)
            answer = await typing.keystroke(Change(send=True), private)
            assert answer.learned.outcome == Outcome.INCOGNITO and answer.learned.words == 0
            assert "Anneke" not in texts(await typing.keystroke(Change(text="with Ann"), private))
        await plane.users.flush()
        assert not [e for e in (await plane.export(key)).entries if "quibblecon" in e.lower()]
    asyncio.run(go())


def test_import_takes_words_and_refuses_what_looks_like_a_secret(runtime, tmp_path):
    key = sign_user(SECRET, "ann")

    async def go():
        plane = await plane_on(runtime, tmp_path)()
        learned, refused = await plane.import_words(key, [("Quibblecon", 0), ("zorbleflax", 5), ("Hunter2", 0),
                                                             ("two words", 0), ("jane@example.com", 0)])
        assert learned.outcome == Outcome.LEARNED and learned.words == MIN_COUNT + 5
        assert refused == ["Hunter2", "two words", "jane@example.com"]
        assert texts(await plane.predict("see you at Qui", Ask(user=key)))[0] == "Quibblecon"  # at once
        entries = (await plane.export(key)).entries
        assert {e: c for e, (c, _) in entries.items()} == {"Quibblecon": MIN_COUNT, "zorbleflax": 5}
    asyncio.run(go())
