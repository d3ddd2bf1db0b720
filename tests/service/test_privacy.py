"""Typed text never reaches the logs or /metrics, even with debug logging on."""
import grpc
import pytest

from conftest import SHIPPED_MODEL
from helpers import ServerProcess
from service.api.nextword.v1 import nextword_pb2 as pb
from service.api.nextword.v1 import nextword_pb2_grpc as pb_grpc
from service.client import NextWordClient

SECRET = "zebracorn"  # a word nobody else would write: any sight of it is a leak


@pytest.mark.parametrize("log_format", ["plain", "json"])
def test_no_typed_text_in_logs_or_metrics(log_format):
    server = ServerProcess("--model-dir", SHIPPED_MODEL, "--log-level", "DEBUG", "--log-format", log_format,
                           "--max-text-chars", "200", "--auth-token", "t0ken")
    try:
        with NextWordClient(server.address, token="t0ken", retries=0) as client:
            for text in (f"my password is {SECRET}", f"{SECRET} ", f"hello {SECRET[:4]}", SECRET.upper()):
                client.predict(text, probability=True)
            with client.session() as typing:
                typing.text(f"dear {SECRET}")
                typing.edit(delete=3, insert=f"{SECRET}!")
            errors = []
            for call in (lambda: client.predict(SECRET * 40),                    # too long
                         lambda: client.predict(SECRET, k=99),                   # k out of range
                         lambda: client.session().edit(delete=999, insert=SECRET)):  # malformed edit
                with pytest.raises(grpc.RpcError) as e:
                    call()
                errors.append(e.value)
        with NextWordClient(server.address, retries=0) as no_token, pytest.raises(grpc.RpcError):
            no_token.predict(f"{SECRET} without a token")
        with server.channel() as channel:
            raw = channel.unary_unary("/nextword.v1.NextWord/Predict", request_serializer=bytes, response_deserializer=bytes)
            bad = f"{SECRET} \ud800".encode("utf-8", "surrogatepass")
            with pytest.raises(grpc.RpcError):
                raw(b"\x0a" + bytes([len(bad)]) + bad, metadata=[("authorization", "Bearer t0ken")], timeout=5)
            pb_grpc.NextWordStub(channel).GetModelInfo(pb.GetModelInfoRequest(), metadata=[("authorization", "Bearer t0ken")])
        metrics = server.metrics()
        assert "nextword_requests_total" in metrics
    finally:
        log = server.stop()
    assert log.strip(), "the server logged nothing: the test would prove nothing"
    for place, text in (("logs", log), ("/metrics", metrics), ("error messages", " ".join(e.details() for e in errors))):
        assert SECRET not in text.lower() and SECRET[:4] + " " not in text.lower(), f"typed text leaked into {place}"
