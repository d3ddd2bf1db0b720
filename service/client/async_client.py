"""The asyncio twin of service/client/client.py: `AsyncNextWordClient` (grpc.aio), the same calls,
deadlines, retries, TLS, round-robin and resumable typing sessions.

    async with AsyncNextWordClient("localhost:50051") as client:
        await client.predict("how are yo")
        async with client.session() as typing:
            await typing.text("how are ")
"""
from __future__ import annotations

import asyncio

import grpc

from service.api.nextword.v1 import nextword_pb2 as pb
from service.api.nextword.v1 import nextword_pb2_grpc as pb_grpc
from service.client.calls import Calls, Typing
from service.client.common import ClientError, Resumption, Strip, make_channel, predict_options, with_token


class AsyncNextWordClient(Calls):
    """NextWord's calls (service/client/calls.py) on grpc.aio: each call is awaited."""

    def __init__(self, addresses: str | list[str] = "localhost:50051", *, timeout: float = 2.0, retries: int = 3,
                 tls: bool = False, root_certificates: bytes | None = None, certificate_chain: bytes | None = None,
                 private_key: bytes | None = None, metadata: list[tuple[str, str]] | None = None,
                 token: str | None = None):
        self.channel = make_channel(grpc.aio, addresses, retries, tls, root_certificates, certificate_chain, private_key)
        self.stub = pb_grpc.NextWordStub(self.channel)
        self.timeout, self.metadata = timeout, with_token(metadata, token)

    async def _unary(self, method: str, request, convert, timeout: float | None):
        return convert(await getattr(self.stub, method)(request, **self._options(timeout)))

    async def _pages(self, method: str, request, convert, timeout: float | None):
        return convert([page async for page in getattr(self.stub, method)(request, **self._options(timeout))])

    def session(self, k: int = 3, probability: bool = False, *, layout: str = "",
                exact_only: bool = False, user: str = "", incognito: bool = False) -> "AsyncTypingSession":
        return AsyncTypingSession(self.stub, k, predict_options(probability, layout, exact_only, user, incognito),
                                  self.metadata)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()


class _StreamBroken(Exception):
    def __init__(self, error: grpc.RpcError):
        self.error = error


class AsyncTypingSession(Typing):
    """The asyncio twin of TypingSession: one PredictStream, resumed from the whole text on
    a new stream when the old one breaks (server restarted), for up to `resume_seconds`;
    `text`, `edit` and `send` are awaited."""

    def __init__(self, stub, k: int, options: pb.PredictOptions, metadata=None, resume_seconds: float = 10.0):
        super().__init__(stub, k, options, metadata, resume_seconds)
        self._open()

    def _open(self) -> None:
        self._call = self.stub.PredictStream(metadata=self.metadata)

    async def _ask(self, request: pb.StreamRequest) -> pb.PredictResponse:
        try:
            await self._call.write(request)
        except grpc.RpcError as e:  # the stream broke under us (grpc reports a failed write as INTERNAL)
            raise _StreamBroken(e) from e
        response = await self._call.read()
        if response is grpc.aio.EOF:
            raise ClientError("the server closed the typing session")
        return response

    async def _send(self, new_text: str, /, **input_) -> Strip:
        self.sequence += 1
        resumption = Resumption(self.resume_seconds)
        while True:
            try:
                return self._answered(new_text, await self._ask(self._request(**input_)))
            except (grpc.RpcError, _StreamBroken) as e:
                error = e.error if isinstance(e, _StreamBroken) else e
                wait = resumption.wait(error, write_failed=isinstance(e, _StreamBroken))
                if wait is None:
                    raise error from None
                await asyncio.sleep(wait)
                self._call.cancel()
                self._open()
                input_ = self._resumed(new_text, input_)

    async def close(self) -> None:
        if not self._call.done():
            await self._call.done_writing()
        self._call.cancel()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()
