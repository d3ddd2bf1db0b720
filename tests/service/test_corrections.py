"""Corrections and autocorrect through a real server on the shipped model."""
import grpc
import pytest

from service.api.nextword.v1 import nextword_pb2 as pb
from service.api.nextword.v1 import nextword_pb2_grpc as pb_grpc


def test_a_mistyped_partial_word_is_offered_as_a_correction(client):
    strip = client.predict("how are ypu")
    assert strip[0].text == "you" and strip[0].kind == "correction"
    assert [s.kind for s in client.predict("how are yo")] == ["completion"] * 3  # typed right: plain completions
    assert client.predict("how are ypu", exact_only=True) == []  # exact only: nothing starts with "ypu"


def test_autocorrect_on_space_for_unknown_words_only(client):
    fix = client.predict("I saw teh ").autocorrect
    assert (fix.original, fix.replacement, fix.separator_length) == ("teh", "the", 1) and 0.5 < fix.confidence <= 1
    assert fix.apply("I saw teh ") == "I saw the "
    assert client.predict("teh ").autocorrect.replacement == "The"  # the start of a message is capitalised
    assert client.predict("see you tomorow ").autocorrect.replacement == "tomorrow"
    for text in ("I live in Provo ", "how are you ", "my friend Kaylee ", "lol ", "ok", "ypu"):
        assert client.predict(text).autocorrect is None, text  # known or not finished: left alone
    assert client.predict("how are ypu ", exact_only=True).autocorrect is None


def test_corrections_keep_the_typed_casing(client):
    assert client.predict("Ypu")[0].text == "You"
    assert client.predict("HOW ARE YPU")[0].text == "YOU"
    assert client.predict("HOW ARE YPU ").autocorrect.replacement == "YOU"


def test_the_layout_decides_which_slips_are_likely(client):
    # on QWERTZ, z sits where QWERTY has y, next to t: "zhe" is a likelier slip of "the" there
    qwertz, qwerty = (client.predict("I saw zhe ", layout=layout).autocorrect for layout in ("qwertz", "qwerty"))
    assert qwertz.replacement == qwerty.replacement == "the" and qwertz.confidence > qwerty.confidence
    with pytest.raises(grpc.RpcError) as e:
        client.predict("hi", layout="dvorak")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "keyboard_layout must be one of" in e.value.details()


def test_a_stream_corrects_as_unary_does(client):
    message = "so waht are yuo doing tomorow "
    with client.session(k=3) as typing:
        for i, ch in enumerate(message):
            streamed = typing.edit(insert=ch)
            unary = client.predict(message[: i + 1])
            assert streamed == unary and streamed.autocorrect == unary.autocorrect, message[: i + 1]


def test_the_wire_format(server):
    with server.channel() as channel:
        stub = pb_grpc.NextWordStub(channel)
        response = stub.Predict(pb.PredictRequest(text="how are ypu "))
        assert response.HasField("autocorrect") and response.autocorrect.replacement == "you"
        response = stub.Predict(pb.PredictRequest(text="how are ypu"))
        assert response.suggestions[0].kind == pb.Suggestion.CORRECTION and not response.HasField("autocorrect")
