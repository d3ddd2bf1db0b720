"""The user store's promises through real servers (README, "Personal suggestions"): one
regression test per row D1-D10 of the issue that found them broken, and the Jepsen-style
checker (`nextword store-check`) for about half a minute on SQLite and on Redis."""
import re
import threading
import time
from pathlib import Path

import grpc
import pytest

from conftest import nextword
from helpers import PersonalServer, at, invented, made_up_words, wait_until
from service.api.nextword.v1 import nextword_pb2 as pb
from service.api.nextword.v1 import nextword_pb2_grpc as pb_grpc
from service.server.security import UserKeys

pytestmark = pytest.mark.slow  # real servers, restarts


def texts(strip) -> list[str]:
    return [s.text for s in strip]


def test_d1_every_acknowledged_learn_survives_a_small_cache_and_a_restart(store, tmp_path):
    kind, url = store
    a = PersonalServer(kind, url, "--user-cache-users", "10", data_dir=str(tmp_path))
    try:
        with a.client() as c:
            answers = [c.learn(a.key(f"d1-{n}"), f"hello {invented(n)}") for n in range(200)]
        assert [a.words for a in answers] == [2] * 200 and all(a.kept for a in answers)
        assert a.server.terminate() == 0
    finally:
        a.stop()
    assert sum(invented(n) in a.entries(f"d1-{n}") for n in range(200)) == 200


def test_d2_d4_a_forget_on_one_server_is_final_on_the_other(store, tmp_path):
    """D2: B kept suggesting the forgotten words for good; D4: a Learn on B 50 ms before a
    Forget on A came back into the store a second later."""
    kind, url = store
    a = PersonalServer(kind, url, data_dir=str(tmp_path))
    b = PersonalServer(kind, url, data_dir=str(tmp_path))
    try:
        key = a.key("d2")
        with a.client() as ca, b.client() as cb:
            cb.learn(key, "Zorblax Quuxbert")
            assert wait_until(lambda: a.stored("d2") > 0, timeout=5)
            assert "Zorblax" in texts(cb.predict("Zo", k=5, user=key))  # b holds the user in memory
            cb.learn(key, "Plimsoll")  # written behind, after the Forget below
            time.sleep(0.05)
            ca.forget(key)
            ca.learn(key, "something new")  # the user learns anything new
            time.sleep(1.5)
            for _ in range(5):
                shown = texts(cb.predict("Zo", k=10, user=key)) + texts(cb.predict("Pli", k=10, user=key))
                assert "Zorblax" not in shown and "Plimsoll" not in shown
            assert set(a.entries("d2")) <= {"something", "new", "<s> something", "something new", "<s> something new"}
    finally:
        a.stop()
        b.stop()


def test_d3_a_forget_right_after_a_learn_of_a_big_user_not_in_memory(store):
    kind, url = store
    a = PersonalServer(kind, url)
    try:
        direct = a.open_store()
        for n in range(6):
            user = f"d3-{n}"
            direct.write(a.store_id(user), 0, 0, at({invented(m, "Qz"): 1 for m in range(31000)}, time.time()), 50000)
            with a.client() as c:
                c.learn(a.key(user), "one more")  # loads the user while it learns
                time.sleep(n * 0.008)
                c.forget(a.key(user))
                time.sleep(1.2)
                assert not [w for w in texts(c.predict("Qza", k=10, user=a.key(user))) if w.startswith("Qz")]
        direct.close()
    finally:
        a.stop()


def test_d5_after_forget_no_file_holds_the_user(tmp_path):
    a = PersonalServer("sqlite", "", data_dir=str(tmp_path))
    try:
        key = a.key("d5")
        words = made_up_words(300, "Vexo")
        with a.client() as c:
            for n in range(100):
                assert c.learn(key, " ".join(words[3 * n:3 * n + 3])).words == 3
            assert wait_until(lambda: a.stored("d5") > 0, timeout=5)
            time.sleep(0.6)
            c.forget(key)
        on_disk = b"".join(p.read_bytes() for p in Path(tmp_path).iterdir() if p.is_file())
        assert b"Vexo" not in on_disk and b"vexo" not in on_disk
    finally:
        a.stop()


def test_d6_the_bound_holds_across_servers(store, tmp_path):
    kind, url = store
    a = PersonalServer(kind, url, "--user-max-entries", "1000", data_dir=str(tmp_path))
    b = PersonalServer(kind, url, "--user-max-entries", "1000", data_dir=str(tmp_path))
    try:
        key = a.key("d6")
        with a.client() as ca, b.client() as cb:
            for n in range(150):
                (ca if n % 2 else cb).learn(key, " ".join(invented(5 * n + m) for m in range(5)))
        time.sleep(1.0)
        assert 0 < a.stored("d6") <= 1000
    finally:
        a.stop()
        b.stop()


def test_d7_a_drain_under_typists_answers_no_call_cancelled():
    """Typists as behind a load balancer: an error sends each to another instance (here: it
    stops). nextword cuts nothing it took: no stream ends CANCELLED after answers, and no
    call outlives the grace period. The one CANCELLED allowed is gRPC's own, for a call
    that reached it in the instant it stopped and that nextword never saw (README, Drain):
    seen here once in a full suite run beside two busy loops."""
    a = PersonalServer("sqlite", "", "--grace-seconds", "5")
    ends, oks = [], []  # each typist's last call: (status, answers it had got)

    def unary():
        with grpc.insecure_channel(a.server.address) as ch:
            stub = pb_grpc.NextWordStub(ch)
            while True:
                try:
                    stub.Predict(pb.PredictRequest(text="how are yo"), timeout=5)
                    oks.append(1)
                except grpc.RpcError as e:
                    return ends.append((e.code().name, 0))

    def keystrokes():  # a message typed at 20 keys a second: it outlasts the grace period
        for c in "see you later " * 20:
            time.sleep(0.05)
            yield pb.StreamRequest(edit=pb.TextEdit(insert=c))

    def streaming():
        with grpc.insecure_channel(a.server.address) as ch:
            stub = pb_grpc.NextWordStub(ch)
            while True:
                keys, answers = keystrokes(), 0
                try:
                    for _ in stub.PredictStream(keys, timeout=10):
                        answers += 1
                        oks.append(1)
                except grpc.RpcError as e:
                    return ends.append((e.code().name, answers))

    typists = [threading.Thread(target=unary if n % 2 else streaming) for n in range(16)]
    try:
        for t in typists:
            t.start()
        time.sleep(1.5)
        assert a.server.terminate(timeout=20) == 0
        for t in typists:
            t.join(20)
    finally:
        log = a.stop()
    assert len(oks) > 100 and len(ends) == 16, (len(oks), ends)
    assert all(code == "UNAVAILABLE" or (code == "CANCELLED" and not answers) for code, answers in ends), ends
    assert "grace period over" not in log
    assert sum(code == "UNAVAILABLE" for code, _ in ends) >= 15, ends


def test_d9_open_keys_are_keyed_by_the_deployment_secret(tmp_path):
    a = PersonalServer("sqlite", "", "--user-keys", "open", data_dir=str(tmp_path / "a"))
    try:
        with a.client() as c:
            c.learn("alice", "hello there")
            assert wait_until(lambda: a.open_store().load(UserKeys("open", a.secret).store_id("alice")).entries, 5)
        public = UserKeys("open", b"nextword").store_id("alice")  # the constant the ids were keyed with before
        assert a.open_store().load(public).entries == {}
        assert UserKeys("open", a.secret).store_id("alice") != UserKeys("open", b"another deployment").store_id("alice")
    finally:
        a.stop()


def test_d10_a_heavy_learner_hears_busy_and_others_learn_on(store):
    kind, url = store
    a = PersonalServer(kind, url)
    try:
        heavy, light = a.key("d10-heavy"), a.key("d10-light")
        big = " ".join(invented(n, "w") for n in range(1300))  # about 8 KB
        with grpc.insecure_channel(a.server.address) as ch:
            stub = pb_grpc.NextWordStub(ch)
            outcomes = [stub.Learn(pb.LearnRequest(user=heavy, text=big)).outcome for _ in range(40)]
            assert pb.LearnResponse.BUSY in outcomes and pb.LearnResponse.LEARNED in outcomes
            assert pb.LearnResponse.STORE_DOWN not in outcomes
            light_answer = stub.Learn(pb.LearnRequest(user=light, text="see you at eight"))
            assert light_answer.outcome == pb.LearnResponse.LEARNED and light_answer.words == 4
        assert a.server.sample("nextword_user_messages_dropped_total", reason="busy") == outcomes.count(pb.LearnResponse.BUSY)
        assert a.server.sample("nextword_user_messages_dropped_total", reason="store_down") == 0
    finally:
        a.stop()


def test_the_store_check_finds_no_violation(store):
    """The model-based checker: real servers, Learn/Forget/Predict, SIGTERM-restarts and kill -9."""
    kind, url = store
    proc = nextword("store-check", "--store", kind, "--redis-url", url or "redis://unused:1/0", "--seconds", "25",
                    "--servers", "3", "--seed", "7", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "violations kept 0, final 0, bounded 0, export 0, quiet 0" in proc.stdout
    assert " 0 full store" not in proc.stdout, proc.stdout  # the full-store fault happened
    operations = int(proc.stdout.split(" operations")[0].rsplit(" ", 1)[1].replace(",", ""))
    assert operations > 1000, proc.stdout
    learned = int(re.search(r"learn LEARNED ([\d,]+)", proc.stdout).group(1).replace(",", ""))
    assert learned > 500, proc.stdout  # words the checks can follow (a word never learned proves nothing)
