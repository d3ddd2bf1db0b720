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
from service.client.common import (
    ClientError,
    Learned,
    Resumption,
    SessionOptions,
    Strip,
    export_of,
    import_request,
    learned_of,
    make_channel,
    model_of,
    predict_options,
    strip_of,
    wire_text,
    with_token,
)


class AsyncNextWordClient:
    """The asyncio twin of NextWordClient (grpc.aio)."""

    def __init__(self, addresses: str | list[str] = "localhost:50051", *, timeout: float = 2.0, retries: int = 3,
                 tls: bool = False, root_certificates: bytes | None = None, certificate_chain: bytes | None = None,
                 private_key: bytes | None = None, metadata: list[tuple[str, str]] | None = None,
                 token: str | None = None):
        self.channel = make_channel(grpc.aio, addresses, retries, tls, root_certificates, certificate_chain, private_key)
        self.stub = pb_grpc.NextWordStub(self.channel)
        self.timeout, self.metadata = timeout, with_token(metadata, token)

    async def predict(self, text: str, k: int = 3, probability: bool = False, timeout: float | None = None, *,
                      layout: str = "", exact_only: bool = False, user: str = "", incognito: bool = False) -> Strip:
        request = pb.PredictRequest(text=wire_text(text), max_suggestions=k,
                                    options=predict_options(probability, layout, exact_only, user, incognito))
        response = await self.stub.Predict(request, timeout=timeout or self.timeout, metadata=self.metadata, wait_for_ready=True)
        return strip_of(response)

    async def learn(self, user: str, text: str, timeout: float | None = None) -> Learned:
        """Tell the server a message was sent, so the user's suggestions learn from it; the
        answer says what became of it (`.kept`, `.words`, `.outcome`)."""
        request = pb.LearnRequest(user=user, text=wire_text(text))
        return learned_of(await self.stub.Learn(request, timeout=timeout or self.timeout, metadata=self.metadata,
                                             wait_for_ready=True))

    async def forget(self, user: str, word: str = "", timeout: float | None = None) -> bool:
        """Delete everything the server keeps for the user, at once and for good; with `word`,
        only that word ("remove this suggestion": not suggested to them until sent again).
        True when no file of the store holds it any more (ForgetResponse.wiped)."""
        return (await self.stub.Forget(pb.ForgetRequest(user=user, word=word), timeout=timeout or self.timeout,
                                     metadata=self.metadata, wait_for_ready=True)).wiped

    async def export(self, user: str, timeout: float | None = None) -> dict:
        """Everything the server keeps for the user, as documented JSON (README, "Privacy"),
        however much (ExportStream)."""
        pages = self.stub.ExportStream(pb.ExportRequest(user=user), timeout=timeout or self.timeout,
                                       metadata=self.metadata, wait_for_ready=True)
        return export_of([page async for page in pages])

    async def import_words(self, user: str, words, timeout: float | None = None) -> Learned:
        """Add a personal word list (a dict of word -> count, or words) to the user's model."""
        return learned_of(await self.stub.Import(import_request(user, words), timeout=timeout or self.timeout,
                                              metadata=self.metadata, wait_for_ready=True))

    async def model_info(self, timeout: float | None = None) -> pb.ModelInfo:
        return await self.stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=timeout or self.timeout, metadata=self.metadata, wait_for_ready=True)

    async def ping(self, timeout: float | None = None) -> None:
        await self.stub.Ping(pb.PingRequest(), timeout=timeout or self.timeout, metadata=self.metadata, wait_for_ready=True)

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


class AsyncTypingSession(SessionOptions):
    """The asyncio twin of TypingSession: one PredictStream, resumed from the whole text on
    a new stream when the old one breaks (server restarted), for up to `resume_seconds`."""

    def __init__(self, stub, k: int, options: pb.PredictOptions, metadata=None, resume_seconds: float = 10.0):
        self.k, self.options, self.sequence = k, options, 0
        self.stub, self.metadata, self.resume_seconds = stub, metadata, resume_seconds
        self.model: tuple[str, str] | None = None
        self.typed = ""
        self.resumed = 0
        self._open()

    def _open(self) -> None:
        self._call = self.stub.PredictStream(metadata=self.metadata, wait_for_ready=True)

    async def _ask(self, **input_) -> pb.PredictResponse:
        request = pb.StreamRequest(max_suggestions=self.k, sequence=self.sequence, options=self.options, **input_)
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
                response = await self._ask(**input_)
                break
            except (grpc.RpcError, _StreamBroken) as e:
                error = e.error if isinstance(e, _StreamBroken) else e
                wait = resumption.wait(error, write_failed=isinstance(e, _StreamBroken))
                if wait is None:
                    raise error
                await asyncio.sleep(wait)
                self._call.cancel()
                self._open()
                self.resumed += 1
                if "edit" in input_:  # a new stream starts from the whole text
                    input_ = {"text": new_text, "accepted": input_.get("accepted", False)}
        self.typed, self.model = new_text, model_of(response)
        return strip_of(response)

    async def send(self) -> Strip:
        """As TypingSession.send."""
        return await self._send("", text=self.typed, send=True)

    async def text(self, text: str, accepted: bool = False) -> Strip:
        text = wire_text(text)
        return await self._send(text, text=text, accepted=accepted)

    async def edit(self, delete: int = 0, insert: str = "", accepted: bool = False) -> Strip:
        insert = wire_text(insert)
        text = self.typed[: max(len(self.typed) - delete, 0)] + insert
        return await self._send(text, edit=pb.TextEdit(delete=delete, insert=insert), accepted=accepted)

    async def close(self) -> None:
        if not self._call.done():
            await self._call.done_writing()
        self._call.cancel()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()
