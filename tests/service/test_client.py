"""The Python client against a server that goes away and comes back."""
import argparse
import re
import threading
import time

import grpc
import pytest

from conftest import SHIPPED_MODEL
from helpers import ServerProcess
from service.client import ClientError, NextWordClient
from service.client.common import _target, stream_broke
from service.client.connect import add_address_flags, connection, require_server


def test_addresses_become_one_balanced_target():
    assert _target("localhost:50051") == "localhost:50051"
    assert _target(["10.0.0.1:1"]) == "10.0.0.1:1"
    assert _target(["10.0.0.1:1", "10.0.0.2:2"]) == "ipv4:10.0.0.1:1,10.0.0.2:2"
    assert _target("dns:///nextword.default.svc:50051") == "dns:///nextword.default.svc:50051"


def flags(**given) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_address_flags(parser, timeout=1.0)
    args = parser.parse_args([])
    vars(args).update(given)
    return args


def test_the_connection_comes_from_flags_then_variables():
    env = {"NEXTWORD_GRPC_PORT": "6123"}
    assert connection(flags(), env).address == "localhost:6123"
    assert connection(flags(address="h:1"), {"NEXTWORD_ADDRESS": "e:2"}).address == "h:1"
    assert connection(flags(), {"NEXTWORD_ADDRESS": "e:2"}).address == "e:2"
    conn = connection(flags(), {"NEXTWORD_AUTH_TOKEN": "s3", "NEXTWORD_TLS": "1"})
    assert conn.token == "s3" and conn.tls and not conn.root_certificates
    assert connection(flags(token="flag"), {"NEXTWORD_AUTH_TOKEN": "env"}).token == "flag"
    with pytest.raises(ClientError, match="--timeout must be positive"):
        connection(flags(address="h:1", timeout=0))
    with pytest.raises(ClientError, match="go together"):
        connection(flags(tls_client_cert="c.pem"))
    with pytest.raises(ClientError, match="cannot read the TLS CA"):
        connection(flags(tls_ca="/nonexistent/ca.pem"))


@pytest.mark.parametrize("address, said", [("localhost", "has no port: give host:port, e.g. localhost:50051"),
                                           ("http://localhost:50051", "takes host:port, not a URL: localhost:50051?"),
                                           ("localhost:http", "has no port")])
def test_an_address_that_cannot_be_right_is_said_at_once(address, said):
    with pytest.raises(ClientError, match=re.escape(said)):
        connection(flags(address=address))


def test_no_server_is_said_within_a_second():
    port = ServerProcess("--model-dir", SHIPPED_MODEL)
    address = port.address
    port.stop()
    started = time.monotonic()
    with pytest.raises(ClientError, match=f"no server at {address} — start one with scripts/serve"):
        require_server(address)
    assert time.monotonic() - started < 1.5


def test_a_call_waits_for_a_restarted_server_within_its_deadline():
    first = ServerProcess("--model-dir", SHIPPED_MODEL)
    port = first.port
    with NextWordClient(f"127.0.0.1:{port}", timeout=20) as client:
        assert client.predict("how are yo")[0].text == "you"
        first.stop()  # the server is gone ...
        restarted = []
        timer = threading.Timer(1.0, lambda: restarted.append(ServerProcess("--model-dir", SHIPPED_MODEL, "--grpc-port", port)))
        timer.start()
        started = time.monotonic()
        try:
            assert client.predict("how are yo")[0].text == "you"  # ... and this call rides over the restart
            assert time.monotonic() - started >= 1.0
        finally:
            timer.join()  # the call can succeed before the timer's thread has recorded its server
            for s in restarted:
                s.stop()


def test_deadlines_bound_the_wait_for_a_server_that_is_down():
    server = ServerProcess("--model-dir", SHIPPED_MODEL)
    port = server.port
    server.stop()
    with NextWordClient(f"127.0.0.1:{port}", timeout=0.5) as client:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            client.predict("how are yo")
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 3


def test_round_robin_spreads_calls_over_several_servers():
    servers = [ServerProcess("--model-dir", SHIPPED_MODEL) for _ in range(2)]
    try:
        with NextWordClient([s.address for s in servers]) as client:
            for _ in range(20):
                client.ping()
        counts = [s.sample("nextword_requests_total", method="Ping", code="OK") for s in servers]
        assert all(c >= 5 for c in counts), counts
    finally:
        for s in servers:
            s.stop()


@pytest.mark.parametrize("code, internal_before, broke", [
    (grpc.StatusCode.UNAVAILABLE, False, True),
    (grpc.StatusCode.UNAVAILABLE, True, True),
    (grpc.StatusCode.INTERNAL, False, True),   # gRPC's word for some lost connections: resume once
    (grpc.StatusCode.INTERNAL, True, False),   # again on the new stream: the server's own answer
    (grpc.StatusCode.INVALID_ARGUMENT, False, False),
    (grpc.StatusCode.PERMISSION_DENIED, False, False),
])
def test_which_stream_errors_a_typing_session_resumes_from(code, internal_before, broke):
    error = grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="internal error")
    assert stream_broke(error, internal_before) is broke
