"""Predict, PredictStream and GetModelInfo against a real server on an ephemeral port."""
import grpc
import numpy as np
import pytest

from conftest import SHIPPED_MODEL
from helpers import EXPECTED_PROVIDER
from model.engine.runtime import Runtime
from model.engine.strip import StripBuilder
from model.engine.suggest import blocklist
from model.engine.text import BOS_ID, split_typed, tokenize

TEXTS = ["", "how are yo", "how are you ", "Hel", "i", "I don", "what do you think about th", "lol. wh",
         "HEL", "So I was thinking, maybe we could ", "👍 ok ", "it\u2019s ",
         "he is indefat", "I flew to Uta", "an indefatog"]  # the main dictionary's words: the server's strip is
                                                          # the evaluation's (one StripBuilder), word for word


SHIPPED = Runtime(SHIPPED_MODEL, "cpu")
STRIPS = StripBuilder.open(SHIPPED.vocab, SHIPPED.dictionary_file, blocklist("default"), unigram_file=SHIPPED.unigram_file)  # as the server has them


def direct(runtime: Runtime, text: str, k: int = 3, exact_only: bool = False):
    """The same text run through onnxruntime directly, from a zero state, no server, no cache."""
    context, partial = split_typed(text)
    ids = [BOS_ID, *runtime.vocab.encode(tokenize(context))]
    h, c = runtime.zero_state(1)
    logprobs = runtime.run(np.array([ids], np.int64), h, c).logprobs[0]
    return STRIPS.candidates(logprobs, context, partial, k, corrections=not exact_only)


def test_suggestions_equal_direct_onnxruntime_inference(client):
    runtime = Runtime(SHIPPED_MODEL, "cpu")
    for text in TEXTS:
        got = client.predict(text, k=5, probability=True)
        want = direct(runtime, text, 5)
        assert [s.text for s in got] == [w.text for w in want], text
        assert [s.probability for s in got] == [np.float32(np.exp(w.logprob)) for w in want]  # to the bit, text


def test_completions_and_keyboard_casing(client):
    completions = client.predict("how are yo")
    assert completions and all(s.kind == "completion" and s.text.lower().startswith("yo") for s in completions)
    assert all(s.text.startswith("Hel") for s in client.predict("Hel"))        # typed prefix keeps its case
    assert all(s.text.startswith("HEL") for s in client.predict("HEL"))        # caps lock stays on
    assert all(s.text[0].isupper() for s in client.predict("", k=10))          # start of a message
    assert all(s.text[0].isupper() for s in client.predict("ok. ", k=10))      # start of a sentence
    assert any(s.text == "I" for s in client.predict("i", k=10))               # "i" is "I"
    next_words = client.predict("how are you ")
    assert len(next_words) == 3 and all(s.kind == "next_word" for s in next_words)
    for s in client.predict("", k=10) + next_words:
        assert any(ch.isalpha() for ch in s.text)                              # words only


def test_contractions_are_suggested(client):
    assert any(s.text == "don't" for s in client.predict("I don", k=5))
    assert any(s.text == "I'm" for s in client.predict("I'", k=5))


def test_stream_keeps_state_and_agrees_with_unary(client):
    message = "hey how are you doing today? I'm good"
    with client.session(k=3) as typing:
        for i, ch in enumerate(message):
            streamed = typing.edit(insert=ch)
            assert streamed == client.predict(message[: i + 1]), message[: i + 1]
        assert typing.edit(delete=4) == client.predict(message[:-4])  # backspace
        assert typing.text("new text ") == client.predict("new text ")


@pytest.mark.parametrize("exact_only", [False, True])
def test_state_cache_gives_the_same_answers_as_computing_from_scratch(server, client, exact_only):
    runtime = Runtime(SHIPPED_MODEL, "cpu")
    hits = server.sample("nextword_state_cache_hits_total")
    text = "so waht are yuo up to this weekend" if not exact_only else "so what are you up to this weekend"
    for end in range(1, len(text) + 1):  # every prefix: exact hits, parent extensions, misses
        got = client.predict(text[:end], k=5, probability=True, exact_only=exact_only)
        want = direct(runtime, text[:end], 5, exact_only)
        assert [s.text for s in got] == [w.text for w in want]
        assert [s.probability for s in got] == [np.float32(np.exp(w.logprob)) for w in want]  # to the bit
    assert server.sample("nextword_state_cache_hits_total") >= hits + len(text) - 8


def test_model_info(client):
    info = client.model_info()
    manifest_vocab = len((SHIPPED_MODEL / "vocab.txt").read_text().splitlines())
    assert info.vocab_size == manifest_vocab and info.execution_provider == EXPECTED_PROVIDER
    assert info.evaluation["ksr_3"] > 0 and info.baseline_evaluation["ksr_3"] > 0
    assert info.name and info.version and info.max_suggestions == 10


def test_many_calls_in_flight_on_one_connection_are_answered_or_shed(server):
    """README, "Load shedding": up to ~1,000 calls in flight on one connection, each gets an
    answer or RESOURCE_EXHAUSTED (beyond that gRPC's transport itself cancels some)."""
    import asyncio
    import collections

    from service.api.nextword.v1 import nextword_pb2 as pb
    from service.api.nextword.v1 import nextword_pb2_grpc as pb_grpc

    async def go():
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = pb_grpc.NextWordStub(channel)
            await stub.Ping(pb.PingRequest())

            async def one(i):
                try:
                    await stub.Predict(pb.PredictRequest(text=f"{i} how are yo"), timeout=60)
                    return "OK"
                except grpc.aio.AioRpcError as e:
                    return e.code().name
            return collections.Counter(await asyncio.gather(*(one(i) for i in range(800))))

    codes = asyncio.run(go())
    assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED"} and codes["OK"] > 100, codes
