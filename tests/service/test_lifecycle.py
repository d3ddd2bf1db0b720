"""Health, reflection, metrics, bad input, load shedding and SIGTERM, on real servers."""
import asyncio
import subprocess
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from conftest import SHIPPED_MODEL
from helpers import EXPECTED_PROVIDER, ServerProcess, wait_until
from service.api.nextword.v1 import nextword_pb2 as pb
from service.api.nextword.v1 import nextword_pb2_grpc as pb_grpc
from service.client import AsyncNextWordClient, NextWordClient
from service.server.server import NextWordServer
from service.server.settings import Settings

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture(scope="module")
def limited_server():
    """Small limits, so that hitting them is cheap."""
    s = ServerProcess("--model-dir", SHIPPED_MODEL, "--max-streams", "2", "--max-text-chars", "1000")
    yield s
    s.stop()


def test_health_is_not_serving_until_warmed_up_then_serving():
    async def scenario():
        srv = NextWordServer(Settings(host="127.0.0.1", grpc_port=0, metrics_port=-1, model_dir=str(SHIPPED_MODEL)))
        release = threading.Event()
        warm_up = srv.runtime.warm_up
        srv.runtime.warm_up = lambda: (release.wait(10), warm_up())
        starting = asyncio.ensure_future(srv.start())
        await asyncio.sleep(0.5)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.grpc_port}") as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            before = (await stub.Check(health_pb2.HealthCheckRequest(service="nextword.v1.NextWord"))).status
            release.set()
            await starting
            after = (await stub.Check(health_pb2.HealthCheckRequest())).status
        await srv.stop()
        return before, after
    assert asyncio.run(scenario()) == (NOT_SERVING, SERVING)


def test_deadlines_are_honoured_and_expired_calls_cost_no_model_step():
    async def scenario():
        srv = NextWordServer(Settings(host="127.0.0.1", grpc_port=0, metrics_port=-1, model_dir=str(SHIPPED_MODEL), max_batch=1))
        await srv.start()
        before = srv.metrics.batch_size._sum.get()
        run = srv.runtime.run
        srv.runtime.run = lambda *a: (time.sleep(0.3), run(*a))[1]  # a slow model step
        async with AsyncNextWordClient(f"127.0.0.1:{srv.grpc_port}", retries=0) as c:
            calls = [c.predict(f"text number {i} ", timeout=0.1) for i in range(5)]
            results = await asyncio.gather(*calls, return_exceptions=True)
            steps = srv.metrics.batch_size._sum.get() - before
            srv.runtime.run = run
            answer = await c.predict("how are yo")
        await srv.stop()
        return results, steps, answer
    results, steps, answer = asyncio.run(scenario())
    assert all(isinstance(r, grpc.RpcError) and r.code() == grpc.StatusCode.DEADLINE_EXCEEDED for r in results)
    assert steps <= 1  # the queued calls whose deadline passed were dropped, not computed
    assert answer[0].text == "you"


def test_reflection_lists_the_services(server):
    with server.channel() as ch:
        services = ProtoReflectionDescriptorDatabase(ch).get_services()
    assert {"nextword.v1.NextWord", "grpc.health.v1.Health"} <= set(services)


def test_reflection_can_be_switched_off():
    s = ServerProcess("--model-dir", SHIPPED_MODEL, "--reflection", "false")
    try:
        with s.channel() as ch, pytest.raises(grpc.RpcError) as e:
            ProtoReflectionDescriptorDatabase(ch).get_services()
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        s.stop()


def test_metrics_move_with_requests_and_pass_promtool(server):
    before = server.sample("nextword_requests_total", method="Predict", code="OK")
    with NextWordClient(server.address) as c:
        for text in ("hello th", "hello there ", "hello there how"):
            c.predict(text)
        c.ping()
    assert server.sample("nextword_requests_total", method="Predict", code="OK") == before + 3
    assert server.sample("nextword_request_duration_seconds_count", method="Predict") >= 3
    assert server.sample("nextword_requests_total", method="Ping", code="OK") >= 1
    text = server.metrics()
    for name in ("nextword_inference_duration_seconds_bucket", "nextword_batch_size_bucket", "nextword_queue_wait_seconds_bucket",
                 "nextword_state_cache_hits_total", "nextword_state_cache_misses_total", "nextword_inflight_requests",
                 'nextword_model_info{name="', f'provider="{EXPECTED_PROVIDER}"', 'le="5e-05"'):
        assert name in text
    assert "hello" not in text  # typed text never reaches metrics
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def rpc_error(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value


def test_bad_input_gets_a_clear_status_and_the_server_keeps_serving(limited_server):
    with limited_server.channel() as ch:
        stub = pb_grpc.NextWordStub(ch)
        cases = [
            (lambda: stub.Predict(pb.PredictRequest(text="hi", max_suggestions=11)), grpc.StatusCode.INVALID_ARGUMENT, "at most 10"),
            (lambda: stub.Predict(pb.PredictRequest(text="x" * 1001)), grpc.StatusCode.INVALID_ARGUMENT, "limit is 1000"),
            (lambda: stub.Predict(pb.PredictRequest(text="x" * 70000)), grpc.StatusCode.RESOURCE_EXHAUSTED, "larger than max"),
            (lambda: list(stub.PredictStream(iter([pb.StreamRequest(sequence=1)]))), grpc.StatusCode.INVALID_ARGUMENT, "neither text nor edit"),
            (lambda: list(stub.PredictStream(iter([pb.StreamRequest(text="ab"), pb.StreamRequest(edit=pb.TextEdit(delete=3))]))),
             grpc.StatusCode.INVALID_ARGUMENT, "deletes 3 characters"),
        ]
        for call, code, message in cases:
            error = rpc_error(call)
            assert error.code() == code and message in (error.details() or ""), (code, error.details())
            assert stub.Predict(pb.PredictRequest(text="how are yo")).suggestions  # still answering
    assert limited_server.proc.poll() is None


def test_too_many_streams_are_refused_and_a_disconnect_frees_its_session(limited_server):
    with limited_server.channel() as ch:
        stub = pb_grpc.NextWordStub(ch)
        first, second = stub.PredictStream(iter(lambda: pb.StreamRequest(text="hi"), None)), None
        next(first)
        second = stub.PredictStream(iter(lambda: pb.StreamRequest(text="yo"), None))
        next(second)
        assert wait_until(lambda: limited_server.sample("nextword_stream_sessions") == 2)
        error = rpc_error(lambda: next(stub.PredictStream(iter([pb.StreamRequest(text="x")]))))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "typing sessions" in error.details()
        first.cancel()  # the client goes away mid-stream
        second.cancel()
        assert wait_until(lambda: limited_server.sample("nextword_stream_sessions") == 0)
        assert next(stub.PredictStream(iter([pb.StreamRequest(text="how are yo")]))).suggestions


def test_a_full_queue_sheds_load_with_resource_exhausted():
    async def scenario():
        srv = NextWordServer(Settings(host="127.0.0.1", grpc_port=0, metrics_port=-1, model_dir=str(SHIPPED_MODEL),
                                      max_batch=1, max_queue=2))
        await srv.start()
        run = srv.runtime.run
        srv.runtime.run = lambda *a: (time.sleep(0.05), run(*a))[1]  # a slow model step
        async with AsyncNextWordClient(f"127.0.0.1:{srv.grpc_port}", retries=0, timeout=10) as c:
            results = await asyncio.gather(*(c.predict(f"message {i} is about ") for i in range(12)), return_exceptions=True)
            srv.runtime.run = run
            after = await c.predict("how are yo")
        await srv.stop()
        return results, after
    results, after = asyncio.run(scenario())
    codes = [r.code() if isinstance(r, grpc.RpcError) else "OK" for r in results]
    assert set(codes) == {"OK", grpc.StatusCode.RESOURCE_EXHAUSTED}, codes  # some answered, the rest shed at once
    assert "busy" in next(r.details() for r in results if isinstance(r, grpc.RpcError))
    assert after[0].text == "you"


def test_sigterm_drains_in_flight_calls_then_exits_zero():
    s = ServerProcess("--model-dir", SHIPPED_MODEL, "--grace-seconds", "5")
    try:
        with s.channel() as ch:
            stub = pb_grpc.NextWordStub(ch)
            watch = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest())
            assert next(watch).status == SERVING
            requests = iter([pb.StreamRequest(text="how are", sequence=1), pb.StreamRequest(text="how are yo", sequence=2)])
            gate = threading.Event()

            def slow_requests():  # an in-flight stream that sends its second message after SIGTERM
                yield next(requests)
                gate.wait(5)
                yield next(requests)
            stream = stub.PredictStream(slow_requests())
            assert next(stream).sequence == 1
            s.proc.send_signal(15)
            assert next(watch).status == NOT_SERVING
            gate.set()
            assert next(stream).sequence == 2  # answered during the drain
            assert list(stream) == []
        assert s.proc.wait(10) == 0
    finally:
        s.stop()
