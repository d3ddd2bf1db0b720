"""Python client for nextword (`NextWordClient`; its asyncio twin is service/client/async_client.py).

    with NextWordClient("localhost:50051") as client:
        client.predict("how are yo")            # [Suggestion(text='you', ...), ...]
        with client.session() as typing:         # one stream: each keystroke = one model step
            typing.text("how are ")
            typing.edit(insert="y")

- Deadlines: every unary call has one (`timeout`, seconds).
- Retries: a call waits for the server to be reachable (up to its deadline: a restarted
  server is picked up within ~2 s, the reconnect backoff is kept short), and UNAVAILABLE
  answers are retried with exponential backoff by gRPC's own retry policy.
- Several addresses (a list, or a DNS name with several records via "dns:///name:port")
  are balanced round-robin per call: gRPC keeps long-lived HTTP/2 connections, so
  spreading calls has to happen in the client (see deploy/README.md).
- TLS: pass `tls=True` (system roots) or `root_certificates=` PEM bytes; for mutual TLS
  also `certificate_chain=` and `private_key=`. A server with --auth-token: `token=`.
- Personal suggestions: `user=` a key signed by the app backend (`sign_user(secret,
  name)` with the server's user secret); `learn(user, text)` when a message is sent (or
  `session.send()`), `forget(user)` to delete everything kept for the user.
"""
from __future__ import annotations

import queue
import time

import grpc

from service.api.nextword.v1 import nextword_pb2 as pb
from service.api.nextword.v1 import nextword_pb2_grpc as pb_grpc
from service.client.calls import Calls, Typing
from service.client.common import Resumption, Strip, make_channel, predict_options, with_token


class NextWordClient(Calls):
    """NextWord's calls (service/client/calls.py), blocking."""

    def __init__(self, addresses: str | list[str] = "localhost:50051", *, timeout: float = 2.0, retries: int = 3,
                 tls: bool = False, root_certificates: bytes | None = None, certificate_chain: bytes | None = None,
                 private_key: bytes | None = None, metadata: list[tuple[str, str]] | None = None,
                 token: str | None = None):
        self.channel = make_channel(grpc, addresses, retries, tls, root_certificates, certificate_chain, private_key)
        self.stub = pb_grpc.NextWordStub(self.channel)
        self.timeout, self.metadata = timeout, with_token(metadata, token)

    def _unary(self, method: str, request, convert, timeout: float | None):
        return convert(getattr(self.stub, method)(request, **self._options(timeout)))

    def _pages(self, method: str, request, convert, timeout: float | None):
        return convert(getattr(self.stub, method)(request, **self._options(timeout)))

    def session(self, k: int = 3, probability: bool = False, *, layout: str = "", exact_only: bool = False,
                user: str = "", incognito: bool = False) -> "TypingSession":
        return TypingSession(self.stub, k, predict_options(probability, layout, exact_only, user, incognito), self.metadata)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_CLOSE = object()  # ends the request iterator of a sync stream


class TypingSession(Typing):
    """A typing session over PredictStream: the server keeps the model state between keystrokes.

    The session also keeps its text, so when the stream breaks (the server restarted, a
    connection dropped) it opens a new one and resumes from the whole text, retrying with
    backoff for up to `resume_seconds`; the caller only sees a slower keystroke.
    """

    def __init__(self, stub, k: int, options: pb.PredictOptions, metadata=None, resume_seconds: float = 10.0):
        super().__init__(stub, k, options, metadata, resume_seconds)
        self._open()

    def _open(self) -> None:
        self._requests: queue.Queue = queue.Queue()
        self._responses = self.stub.PredictStream(iter(self._requests.get, _CLOSE), metadata=self.metadata)

    def _send(self, new_text: str, /, **input_) -> Strip:
        self.sequence += 1
        resumption = Resumption(self.resume_seconds)
        while True:
            try:
                self._requests.put(self._request(**input_))
                return self._answered(new_text, next(self._responses))
            except grpc.RpcError as e:
                wait = resumption.wait(e)
                if wait is None:
                    raise
                time.sleep(wait)
                self._open()
                input_ = self._resumed(new_text, input_)

    def close(self) -> None:
        self._requests.put(_CLOSE)
        self._responses.cancel()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
