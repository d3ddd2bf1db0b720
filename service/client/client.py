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
from service.client.common import (
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


class NextWordClient:
    def __init__(self, addresses: str | list[str] = "localhost:50051", *, timeout: float = 2.0, retries: int = 3,
                 tls: bool = False, root_certificates: bytes | None = None, certificate_chain: bytes | None = None,
                 private_key: bytes | None = None, metadata: list[tuple[str, str]] | None = None,
                 token: str | None = None):
        self.channel = make_channel(grpc, addresses, retries, tls, root_certificates, certificate_chain, private_key)
        self.stub = pb_grpc.NextWordStub(self.channel)
        self.timeout, self.metadata = timeout, with_token(metadata, token)

    def predict(self, text: str, k: int = 3, probability: bool = False, timeout: float | None = None, *,
                layout: str = "", exact_only: bool = False, user: str = "", incognito: bool = False) -> Strip:
        """Suggestions for the text typed so far (a list, with `.autocorrect`). `layout`:
        qwerty, qwertz or azerty for typo tolerance; `exact_only`: no corrections; `user`:
        a signed user key (see `sign_user`), to mix in that user's own words."""
        request = pb.PredictRequest(text=wire_text(text), max_suggestions=k,
                                    options=predict_options(probability, layout, exact_only, user, incognito))
        response = self.stub.Predict(request, timeout=timeout or self.timeout, metadata=self.metadata, wait_for_ready=True)
        return strip_of(response)

    def learn(self, user: str, text: str, timeout: float | None = None) -> Learned:
        """Tell the server a message was sent, so the user's suggestions learn from it; the
        answer says what became of it (`.kept`, `.words`, `.outcome`)."""
        request = pb.LearnRequest(user=user, text=wire_text(text))
        return learned_of(self.stub.Learn(request, timeout=timeout or self.timeout, metadata=self.metadata,
                                             wait_for_ready=True))

    def forget(self, user: str, word: str = "", timeout: float | None = None) -> bool:
        """Delete everything the server keeps for the user, at once and for good; with `word`,
        only that word ("remove this suggestion": not suggested to them until sent again).
        True when no file of the store holds it any more (ForgetResponse.wiped)."""
        return (self.stub.Forget(pb.ForgetRequest(user=user, word=word), timeout=timeout or self.timeout,
                                     metadata=self.metadata, wait_for_ready=True)).wiped

    def export(self, user: str, timeout: float | None = None) -> dict:
        """Everything the server keeps for the user, as documented JSON (README, "Privacy"),
        however much (ExportStream)."""
        return export_of(self.stub.ExportStream(pb.ExportRequest(user=user), timeout=timeout or self.timeout,
                                                metadata=self.metadata, wait_for_ready=True))

    def import_words(self, user: str, words, timeout: float | None = None) -> Learned:
        """Add a personal word list (a dict of word -> count, or words) to the user's model."""
        return learned_of(self.stub.Import(import_request(user, words), timeout=timeout or self.timeout,
                                              metadata=self.metadata, wait_for_ready=True))

    def model_info(self, timeout: float | None = None) -> pb.ModelInfo:
        return self.stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=timeout or self.timeout, metadata=self.metadata, wait_for_ready=True)

    def ping(self, timeout: float | None = None) -> None:
        self.stub.Ping(pb.PingRequest(), timeout=timeout or self.timeout, metadata=self.metadata, wait_for_ready=True)

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


class TypingSession(SessionOptions):
    """A typing session over PredictStream: the server keeps the model state between keystrokes.

    The session also keeps its text, so when the stream breaks (the server restarted, a
    connection dropped) it opens a new one and resumes from the whole text, retrying with
    backoff for up to `resume_seconds`; the caller only sees a slower keystroke.
    """

    def __init__(self, stub, k: int, options: pb.PredictOptions, metadata=None, resume_seconds: float = 10.0):
        self.k, self.options, self.sequence = k, options, 0
        self.stub, self.metadata, self.resume_seconds = stub, metadata, resume_seconds
        self.model: tuple[str, str] | None = None  # (name, version) of the model that last answered
        self.typed = ""                              # the session's text, as the server has it
        self.resumed = 0                             # how many times the stream was reopened
        self._open()

    def _open(self) -> None:
        self._requests: queue.Queue = queue.Queue()
        self._responses = self.stub.PredictStream(iter(self._requests.get, _CLOSE), metadata=self.metadata)

    def _ask(self, **input_) -> pb.PredictResponse:
        self._requests.put(pb.StreamRequest(max_suggestions=self.k, sequence=self.sequence, options=self.options, **input_))
        return next(self._responses)

    def _send(self, new_text: str, /, **input_) -> Strip:
        self.sequence += 1
        resumption = Resumption(self.resume_seconds)
        while True:
            try:
                response = self._ask(**input_)
                break
            except grpc.RpcError as e:
                wait = resumption.wait(e)
                if wait is None:
                    raise
                time.sleep(wait)
                self._open()
                self.resumed += 1
                if "edit" in input_:  # a new stream starts from the whole text
                    input_ = {"text": new_text, "accepted": input_.get("accepted", False)}
        self.typed, self.model = new_text, model_of(response)
        return strip_of(response)

    def send(self) -> Strip:
        """The text was sent: the server learns it for the session's user and starts a new,
        empty message; returns the suggestions for its first word."""
        return self._send("", text=self.typed, send=True)

    def text(self, text: str, accepted: bool = False) -> Strip:
        """Send the whole text typed so far; `accepted`: the change put in a word the strip offered."""
        text = wire_text(text)
        return self._send(text, text=text, accepted=accepted)

    def edit(self, delete: int = 0, insert: str = "", accepted: bool = False) -> Strip:
        """Send what changed: `delete` characters removed from the end, then `insert` added;
        `accepted`: the insert is a word the strip offered (Tab, a tap), evidence for the user's model."""
        insert = wire_text(insert)
        text = self.typed[: max(len(self.typed) - delete, 0)] + insert
        return self._send(text, edit=pb.TextEdit(delete=delete, insert=insert), accepted=accepted)

    def close(self) -> None:
        self._requests.put(_CLOSE)
        self._responses.cancel()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
