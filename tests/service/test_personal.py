"""Personal suggestions through real servers: SQLite and a real redis-server, same tests."""
import time

import grpc
import pytest
from conftest import SHIPPED_MODEL
from grpc_health.v1 import health_pb2
from helpers import PersonalServer as Users
from helpers import Redis, ServerProcess, invented, wait_until

from model.data import encode_messages
from model.engine import personal
from model.engine.personal import UserModel
from model.engine.strip import StripBuilder
from model.engine.suggest import blocklist
from model.evaluate import personal as evaluate_personal
from model.evaluate.command import model_dir_scorer
from service.client import NextWordClient, sign_user

pytestmark = pytest.mark.slow  # every test here starts real servers

NAME = "Zorblax"  # outside the vocabulary, and written by nobody else: any sight of it is a leak




@pytest.fixture(scope="module", params=["sqlite", "redis"])
def users(request):
    url = request.getfixturevalue("redis_server").url if request.param == "redis" else ""
    u = Users(request.param, url)
    yield u
    log = u.stop()
    assert NAME.lower() not in log.lower(), "a learned word reached the log"


def texts(strip) -> list[str]:
    return [s.text for s in strip]


def test_a_word_outside_the_vocabulary_is_suggested_after_it_was_sent(users):
    alice = users.key("alice-oov")
    with users.client() as c:
        assert NAME not in texts(c.predict("I met Zo", k=5, user=alice))
        assert c.learn(alice, f"I met {NAME} at the station").words == 6
        assert texts(c.predict("I met Zo", user=alice))[0] == NAME        # completed, with the user's casing
        assert NAME in texts(c.predict("I met ", k=5, user=alice))        # and as a next word
        assert c.predict(f"{NAME.lower()} ", user=alice).autocorrect is None  # not "corrected" away
        assert NAME not in texts(c.predict("I met Zo", k=5))              # nobody else gets it


def test_counts_move_the_ranking(users):
    bob = users.key("bob-counts")
    with users.client() as c:
        before = texts(c.predict("I love ", k=10, user=bob))
        assert "pizza" not in before[:1]
        for _ in range(3):
            c.learn(bob, "I love pizza")
        assert texts(c.predict("I love ", user=bob))[0] == "pizza"
        assert texts(c.predict("I love ", k=10)) == before  # without the user: exactly as before


def test_only_sent_text_is_learned_not_keystrokes(users):
    carol = users.key("carol-stream")
    with users.client() as c:
        with c.session(user=carol) as typing:
            for ch in f"see you at {NAME}con":
                typing.edit(insert=ch)
            typing.edit(delete=len(f"{NAME}con"))  # deleted before sending: never learned
            typing.text("see you at the Quibblecon")
            time.sleep(1.5)  # past a write-behind: nothing typed is in the store
            assert users.stored("carol-stream") == 0
            assert "Quibblecon" not in texts(c.predict("see you at the Qu", k=5, user=carol))
            first = typing.send()  # sent: learned, and a new empty message starts
            assert typing.typed == ""
            assert all(s.kind == "next_word" for s in first)
        assert texts(c.predict("see you at the Qu", user=carol))[0] == "Quibblecon"
        assert f"{NAME.lower()}con" not in [t.lower() for t in texts(c.predict("see you at Zo", k=10, user=carol))]
        assert wait_until(lambda: users.stored("carol-stream") > 0, timeout=5)


def test_forget_removes_everything(users):
    dave = users.key("dave-forget")
    with users.client() as c:
        c.learn(dave, f"{NAME} and Quuxbert are coming")
        assert wait_until(lambda: users.stored("dave-forget") > 0, timeout=5)
        c.forget(dave)
        assert users.stored("dave-forget") == 0
        time.sleep(1.0)  # a write-behind after forget would bring it back
        assert users.stored("dave-forget") == 0
        assert NAME not in texts(c.predict("Zo", k=10, user=dave))
        assert "Quuxbert" not in texts(c.predict(f"{NAME} and ", k=10, user=dave))


def test_forged_and_foreign_keys_are_refused_and_learn_nothing(users):
    real = users.key("erin-isolation")
    other_server = sign_user(b"another deployment's secret", "erin-isolation")
    forged = "erin-isolation." + real.rsplit(".", 1)[1][::-1]
    someone_elses = real.rsplit(".", 1)[0] + "x." + real.rsplit(".", 1)[1]  # another name, erin's signature
    with users.client(retries=0) as c:
        for key, code in (("erin-isolation", grpc.StatusCode.UNAUTHENTICATED), (other_server, grpc.StatusCode.PERMISSION_DENIED),
                          (forged, grpc.StatusCode.PERMISSION_DENIED), (someone_elses, grpc.StatusCode.PERMISSION_DENIED)):
            for call in (lambda: c.learn(key, f"hi {NAME}"), lambda: c.predict("hi", user=key), lambda: c.forget(key)):
                with pytest.raises(grpc.RpcError) as e:
                    call()
                assert e.value.code() == code
                assert "erin" not in e.value.details()  # the key is never echoed
        time.sleep(1.0)
        assert users.stored("erin-isolation") == 0
        c.learn(real, f"hello {NAME}")
        frank = users.key("frank-isolation")
        assert NAME not in texts(c.predict("hello ", k=10, user=frank))  # another user sees nothing of erin's
        assert NAME in texts(c.predict("hello ", k=10, user=real))


def test_each_user_keeps_a_bounded_number_of_entries():
    u = Users("sqlite", "", "--user-max-entries", "60")
    try:
        key = u.key("grace-bounds")
        with u.client() as c:
            for n in range(40):
                c.learn(key, f"{invented(2 * n)} {invented(2 * n + 1)}")  # 5 entries each: 2 words, 3 pairs
            assert wait_until(lambda: u.stored("grace-bounds") > 0, timeout=5)
            time.sleep(1.0)
            assert u.stored("grace-bounds") <= 60
            assert invented(78) in texts(c.predict(invented(78)[:-1], k=5, user=key))  # the newest stays
            assert invented(0) not in texts(c.predict(invented(0)[:-1], k=5, user=key))  # the oldest went first
    finally:
        u.stop()


def test_learning_is_written_on_drain(users):
    u = Users(users.store, users.redis_url)
    key = u.key("heidi-drain")
    with u.client() as c:
        c.learn(key, f"{NAME} is here")
    assert u.server.terminate() == 0  # at once: before any write-behind
    u.stop()
    assert u.stored("heidi-drain") > 0


def test_several_servers_see_each_others_learning(users, tmp_path):
    """Two processes on one store (SQLite file or Redis): learning on one reaches the other,
    and so does forgetting."""
    a = Users(users.store, users.redis_url, data_dir=str(tmp_path))
    b = Users(users.store, users.redis_url, data_dir=str(tmp_path))
    try:
        key = a.key("ivan-shared")
        with a.client() as ca, b.client() as cb:
            assert NAME not in texts(cb.predict("Zo", k=5, user=key))  # b caches ivan, empty
            ca.learn(key, f"{NAME} again")
            assert wait_until(lambda: NAME in texts(cb.predict("Zo", k=5, user=key)), timeout=5)
            ca.forget(key)
            assert wait_until(lambda: NAME not in texts(cb.predict("Zo", k=5, user=key)), timeout=5)
    finally:
        a.stop()
        b.stop()


def test_a_server_without_a_user_store_says_so(server):
    with NextWordClient(server.address, retries=0) as c:
        assert c.predict("hi ")  # no user: as ever
    off = ServerProcess("--model-dir", SHIPPED_MODEL, "--user-store", "off")
    try:
        with NextWordClient(off.address, retries=0) as c:
            with pytest.raises(grpc.RpcError) as e:
                c.learn("anyone.sig", "hello")
            assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        off.stop()


def test_typing_goes_on_while_redis_is_down():
    r = Redis()
    u = Users("redis", r.url)
    try:
        key = u.key("judy-down")
        with u.client() as c:
            c.learn(key, f"{NAME} rocks")
            assert NAME in texts(c.predict("Zo", k=5, user=key))
            r.stop()
            newcomer = u.key("kim-down")  # not cached: the store cannot be asked
            time.sleep(1.2)  # past the second a cached model serves unchecked
            for _ in range(5):
                assert c.predict("how are yo", user=newcomer)  # answers keep coming
                assert NAME not in texts(c.predict("Zo", k=5, user=key))  # unchecked: not shown (a Forget could be missed)
            learned = c.learn(newcomer, "this is dropped")
            assert learned.outcome == "store_down" and not learned.kept and learned.words == 0
            assert u.server.health() == health_pb2.HealthCheckResponse.SERVING
            assert wait_until(lambda: u.server.sample("nextword_user_store_up") == 0, timeout=5)
            failed = sum(u.server.sample("nextword_user_store_errors_total", operation=op)
                         for op in ("check", "load", "learn", "write", "probe"))
            assert failed >= 1  # the store calls since it went down (the Learn above may not need one: the
                                # store is known to refuse writes, so it answers STORE_DOWN at once)
            assert u.server.sample("nextword_user_messages_dropped_total", reason="store_down") >= 1
            with pytest.raises(grpc.RpcError) as e:
                c.forget(key)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        log = u.stop()
        r.proc.kill()
    assert "user store unreachable" in log
    assert NAME.lower() not in log.lower() and "judy" not in log and "kim" not in log


def test_no_learned_word_or_user_in_metrics(users):
    key = users.key("leo-privacy")
    with users.client() as c:
        c.learn(key, f"{NAME} {NAME}")
        c.predict("Zo", user=key)
    scrape = users.server.metrics()
    assert NAME.lower() not in scrape.lower() and "leo" not in scrape
    assert users.server.sample("nextword_user_messages_learned_total") >= 1


def test_the_async_client_learns_sends_and_forgets(users):
    import asyncio

    from service.client import AsyncNextWordClient

    key = users.key("mia-async")

    async def go():
        async with AsyncNextWordClient(users.server.address, timeout=5) as c:
            assert (await c.learn(key, f"ask {NAME}")).words == 2
            assert (await c.predict("ask Zo", user=key))[0].text == NAME
            async with c.session(user=key) as typing:
                await typing.text("meet Blorptown")
                await typing.send()
                assert typing.typed == ""
            assert (await c.predict("meet Blo", user=key))[0].text == "Blorptown"
            await c.forget(key)
            assert NAME not in [s.text for s in await c.predict("ask Zo", k=10, user=key)]

    asyncio.run(go())


def test_a_user_who_sends_nothing_for_the_time_to_live_is_deleted(users):
    u = Users(users.store, users.redis_url, "--user-ttl-days", "0.00002")  # 1.7 seconds
    try:
        key = u.key("nina-expiry")
        with u.client() as c:
            c.learn(key, f"{NAME} for a moment")
            assert NAME in texts(c.predict("Zo", k=5, user=key))
            assert wait_until(lambda: u.stored("nina-expiry") > 0, timeout=5)
            assert wait_until(lambda: u.stored("nina-expiry") == 0, timeout=10)  # expired in the store
            assert wait_until(lambda: NAME not in texts(c.predict("Zo", k=5, user=key)), timeout=5)  # and here
    finally:
        u.stop()


def test_the_server_moves_a_users_scale_as_evaluation_does(users):
    """Learn through gRPC (unary, and a stream's send) and `nextword evaluate --personal` move
    the user's scale alike: the same evidence entries, from the same model's rows. (A server
    takes evidence where the user's model is at hand: the user typed with it.)"""
    sent = ["see you at the station", "see you at the station tomorrow", "lunch at the station then",
            "see you at the station later", "see you there"]
    key = users.key("dana-scale")
    with users.client() as c:
        for message in sent[:-1]:
            c.predict(message[:3], user=key)  # typed with: the model is at hand, as it is for a typist
            assert c.learn(key, message).kept
        with c.session(user=key) as typing:
            for ch in sent[-1]:
                typing.edit(insert=ch)
            assert typing.send().learned.kept
        served = {e["text"]: e["count"] for e in c.export(key)["entries"] if e["text"].startswith(personal.TRUST)}
    scoring = model_dir_scorer(SHIPPED_MODEL, int8=False)
    vocab, score = scoring.vocab, scoring.score
    strips = StripBuilder.open(vocab, scoring.dictionary_file, blocklist("default"), min_count=1, unigram_file=scoring.unigram_file)
    user = UserModel()
    for when, (message, ids) in enumerate(zip(sent, encode_messages(sent, vocab))):
        evaluate_personal.learn(strips, user, message, score([ids])[0], float(when))
    evaluated = {entry: user.entries[entry][0] for entry in (personal.GAINED, personal.GIVEN)}
    assert set(served) == set(evaluated) and evaluated[personal.GIVEN] > 0
    assert all(abs(served[e] - evaluated[e]) <= 2 for e in evaluated), (served, evaluated)  # rounding of hundredths


def test_a_word_accepted_from_the_strip_counts_more_in_the_evidence(users):
    def trust_after(name: str, accepted: bool) -> dict:
        key = users.key(name)
        with users.client() as c:
            for _ in range(3):
                c.learn(key, "see you at the station")
            with c.session(user=key) as typing:
                typing.text("see you at the sta")
                typing.edit(delete=3, insert="station ", accepted=accepted)
                assert typing.send().learned.kept
            return {e["text"]: e["count"] for e in c.export(key)["entries"] if e["text"].startswith(personal.TRUST)}

    plain, accepted = trust_after("erin-typed", False), trust_after("erin-accepted", True)
    assert accepted[personal.GIVEN] > plain[personal.GIVEN] and accepted[personal.GAINED] > plain[personal.GAINED]
