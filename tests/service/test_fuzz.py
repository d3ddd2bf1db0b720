"""Fuzzing: nothing a client sends crashes anything; the right status comes back."""
import os
import socket
import struct

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SHIPPED_MODEL
from model.engine.suggest import Suggester, cased
from model.engine.text import Vocab, normalize, split_typed, tokenize
from service.api.nextword.v1 import nextword_pb2 as pb
from service.api.nextword.v1 import nextword_pb2_grpc as pb_grpc
from service.client.common import wire_text

# any code point, surrogates included; plus the awkward ones on purpose
AWKWARD = st.sampled_from(["\u202e", "\u200f", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629", "\u05e9\u05dc\u05d5\u05dd",
                           "👨\u200d👩\u200d👧\u200d👦", "🏳️\u200d🌈", "👍🏽", "\x00", "\x07", "\r\n", "\t", "\ufeff",
                           "e\u0301", "İ", "ß", "\ud800", "\udfff", "I'", "'", "don\u2019t"])
TEXT = st.lists(st.one_of(st.text(), AWKWARD), max_size=8).map("".join)
VOCAB = Vocab.load(SHIPPED_MODEL / "vocab.txt")
SUGGESTER = Suggester(VOCAB)
OK_CODES = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_tokenizer_and_splitting_take_anything(text):
    tokens = tokenize(text)
    assert "".join(tokens) == "".join(normalize(text).split())  # every visible character, nothing else
    context, partial = split_typed(text)
    assert context + partial == normalize(text)
    assert all(0 <= i < len(VOCAB) for i in VOCAB.encode(tokens))


def test_tokenizer_takes_a_megabyte():
    text = ("how are you doing 👍🏽 \u202e\u0627\u0644 " * 40000)[: 1 << 20]
    assert len(tokenize(text)) > 100000 and split_typed(text)[1] == ""


@settings(max_examples=300, deadline=None)
@given(TEXT, st.integers(1, 10), st.integers(0, 2**32 - 1))
def test_the_strip_and_its_casing_take_anything(text, k, seed):
    logprobs = np.random.default_rng(seed).normal(size=len(VOCAB)).astype(np.float32)
    context, partial = split_typed(text)
    strip = SUGGESTER.strip(logprobs, context, partial, k)
    candidates = SUGGESTER.candidates(partial)
    assert len(strip) == min(k, len(candidates))  # as many as asked for, when there are that many
    assert all(VOCAB.tokens[s.token_id].lower().startswith(partial.lower()) for s in strip)
    scores = [s.logprob for s in strip]
    assert scores == sorted(scores, reverse=True)  # best first ...
    if strip and len(candidates) > len(strip):  # ... and nothing better was left out
        assert np.sort(logprobs[candidates])[-len(strip)] == pytest.approx(scores[-1])
    for word in ("I", "hello", "Provo", "iOS"):  # casing changes letters' case, never the letters
        assert cased(word, partial, True).casefold() in (word.casefold(), word.upper().casefold())


@pytest.fixture(scope="module")
def stub(server):
    with server.channel() as channel:
        yield pb_grpc.NextWordStub(channel)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT, k=st.integers(0, 20))
def test_predict_answers_or_refuses_cleanly(stub, text, k):
    try:
        response = stub.Predict(pb.PredictRequest(text=wire_text(text), max_suggestions=k), timeout=10)
        assert len(response.suggestions) <= (k or 3)
    except grpc.RpcError as e:
        assert e.code() in OK_CODES, (e.code(), e.details())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(TEXT.map(lambda t: pb.StreamRequest(text=wire_text(t))),
                          st.tuples(st.integers(0, 30), TEXT).map(lambda e: pb.StreamRequest(edit=pb.TextEdit(delete=e[0], insert=wire_text(e[1])))),
                          st.just(pb.StreamRequest())), max_size=12))
def test_streams_answer_in_order_or_refuse_cleanly(stub, requests):
    for i, r in enumerate(requests):
        r.sequence = i + 1
    try:
        answers = list(stub.PredictStream(iter(requests), timeout=20))
        assert [a.sequence for a in answers] == list(range(1, len(requests) + 1))
    except grpc.RpcError as e:
        assert e.code() in OK_CODES, (e.code(), e.details())


def test_undecodable_messages_get_invalid_argument(server):
    with server.channel() as channel:
        raw = channel.unary_unary("/nextword.v1.NextWord/Predict", request_serializer=bytes, response_deserializer=bytes)
        bad_utf8 = "how \ud800 are".encode("utf-8", "surrogatepass")
        for message in (b"\x0a" + bytes([len(bad_utf8)]) + bad_utf8, b"\x0a\xff\xff\xff", os.urandom(64), b"\xff" * 10):
            with pytest.raises(grpc.RpcError) as e:
                raw(message, timeout=5)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
        stream = channel.stream_stream("/nextword.v1.NextWord/PredictStream", request_serializer=bytes, response_deserializer=bytes)
        with pytest.raises(grpc.RpcError) as e:
            list(stream(iter([b"\x0a\x02hi", b"\x0a\xff\xff"]), timeout=5))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "not a valid nextword message" in e.value.details()


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(kind: int, flags: int, stream: int, payload: bytes, claimed: int | None = None) -> bytes:
    length = len(payload) if claimed is None else claimed
    return struct.pack(">I", length)[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


@pytest.mark.parametrize("garbage", [
    os.urandom(1 << 16),                                              # random bytes
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",                              # the wrong protocol
    PREFACE[:10],                                                      # a truncated preface
    PREFACE + frame(4, 0, 0, b"\x00\x03", claimed=6),                  # a truncated SETTINGS frame
    PREFACE + frame(4, 0, 0, b"") + frame(1, 4, 1, os.urandom(40)),    # HEADERS with garbage HPACK
    PREFACE + frame(4, 0, 0, b"") + frame(0, 0, 1, b"\x00\x00\x00\x00\x10abc", claimed=1000),  # DATA cut short
    PREFACE + frame(4, 0, 0, b"") + frame(9, 0, 7, b"x" * 16),         # CONTINUATION out of nowhere
])
def test_garbage_on_the_port_does_not_hurt_the_server(server, stub, garbage):
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(garbage)
            try:
                s.recv(1024)
            except OSError:
                pass
    assert stub.Predict(pb.PredictRequest(text="how are yo"), timeout=5).suggestions[0].text == "you"
    assert server.proc.poll() is None
