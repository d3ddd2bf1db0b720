"""Faults: kill -9 under a live typing session, SIGTERM under load."""
import asyncio
import signal
import threading

import grpc
import pytest

from conftest import SHIPPED_MODEL
from helpers import ServerProcess
from service.api.nextword.v1 import nextword_pb2 as pb
from service.api.nextword.v1 import nextword_pb2_grpc as pb_grpc
from service.client import AsyncNextWordClient, NextWordClient

pytestmark = pytest.mark.slow  # see pyproject.toml


def test_a_typing_session_resumes_from_its_text_after_kill_9_and_restart():
    first = ServerProcess("--model-dir", SHIPPED_MODEL)
    port, restarted = first.port, []
    with NextWordClient(first.address) as client, client.session() as typing:
        assert typing.text("hey how are")
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait()
        timer = threading.Timer(1.0, lambda: restarted.append(ServerProcess("--model-dir", SHIPPED_MODEL, "--grpc-port", port)))
        timer.start()
        try:
            strip = typing.edit(insert=" yo")  # the server is gone; the session reconnects and resends its text
            assert typing.resumed >= 1 and typing.typed == "hey how are yo"
            assert [s.text for s in strip] == [s.text for s in client.predict("hey how are yo")]
            assert typing.edit(insert="u ")  # and carries on with edits on the new stream
        finally:
            timer.join()  # the call can succeed before the timer's thread has recorded its server
            first.stop()
            for s in restarted:
                s.stop()


def test_an_async_typing_session_resumes_too():
    first = ServerProcess("--model-dir", SHIPPED_MODEL)
    port, restarted = first.port, []

    async def scenario():
        async with AsyncNextWordClient(first.address) as client, client.session() as typing:
            assert await typing.text("hey how are")
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait()
            timer = threading.Timer(1.0, lambda: restarted.append(ServerProcess("--model-dir", SHIPPED_MODEL, "--grpc-port", port)))
            timer.start()
            try:
                strip = await typing.edit(insert=" yo")
                assert typing.resumed >= 1 and typing.typed == "hey how are yo"
                assert [s.text for s in strip] == [s.text for s in await client.predict("hey how are yo")]
                assert await typing.edit(insert="u ")
            finally:
                timer.join()

    try:
        asyncio.run(scenario())
    finally:
        first.stop()
        for s in restarted:
            s.stop()


def test_sigterm_under_load_answers_every_accepted_call_or_gives_a_clean_status():
    server = ServerProcess("--model-dir", SHIPPED_MODEL, "--grace-seconds", "5")

    async def load():
        results = []
        async with grpc.aio.insecure_channel(server.address) as channel:  # no retries, no waiting for ready
            stub = pb_grpc.NextWordStub(channel)

            async def worker(w):
                for i in range(400):
                    try:
                        await stub.Predict(pb.PredictRequest(text=f"worker {w} says message {i} about "), timeout=10)
                        results.append("OK")
                    except grpc.RpcError as e:
                        results.append(e.code())
                        if e.code() == grpc.StatusCode.UNAVAILABLE:
                            return  # the server is gone: stop like a real client would back off
            tasks = [asyncio.ensure_future(worker(w)) for w in range(16)]
            await asyncio.sleep(1.0)
            server.proc.send_signal(signal.SIGTERM)
            await asyncio.gather(*tasks)
        return results

    results = asyncio.run(load())
    assert server.proc.wait(15) == 0
    log = server.stop()
    assert results.count("OK") > 50
    assert set(results) <= {"OK", grpc.StatusCode.UNAVAILABLE}, set(results)  # never cut, never INTERNAL
    assert "draining" in log and "stopped after" in log
