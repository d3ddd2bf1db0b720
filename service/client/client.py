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

import json
import queue
import socket
import time
from dataclasses import dataclass

import grpc

from model.engine.errors import UserError
from service.api.nextword.v1 import nextword_pb2 as pb
from service.api.nextword.v1 import nextword_pb2_grpc as pb_grpc
from service.server.security import sign_user  # noqa: F401 (for app backends: `from service.client.client import sign_user`)

SERVICE = pb.DESCRIPTOR.services_by_name["NextWord"].full_name
KINDS = {pb.Suggestion.NEXT_WORD: "next_word", pb.Suggestion.COMPLETION: "completion",
         pb.Suggestion.CORRECTION: "correction"}


class ClientError(UserError):
    """The server could not be reached or refused the call: one line for a person."""


@dataclass(frozen=True)
class Suggestion:
    text: str
    probability: float
    kind: str  # "next_word", "completion" or "correction" (completes what a mistyped word meant)


@dataclass(frozen=True)
class Autocorrect:
    """Replace `original`, which ends `separator_length` characters before the end of the
    text, with `replacement` (what a phone does on space; undo it on a backspace)."""
    original: str
    replacement: str
    confidence: float
    separator_length: int

    def apply(self, text: str) -> str:
        """The text with the correction made (unchanged if it does not end as expected)."""
        end = len(text) - self.separator_length
        if end < len(self.original) or text[end - len(self.original) : end] != self.original:
            return text
        return text[: end - len(self.original)] + self.replacement + text[end:]


class Strip(list):
    """The suggestions, best first (a list of Suggestion), and `autocorrect` (or None)."""

    def __init__(self, suggestions, autocorrect: Autocorrect | None = None):
        super().__init__(suggestions)
        self.autocorrect = autocorrect


def model_of(response: pb.PredictResponse) -> tuple[str, str]:
    return response.model_name, response.model_version


def strip_of(response: pb.PredictResponse) -> Strip:
    fix = response.autocorrect if response.HasField("autocorrect") else None
    return Strip([Suggestion(s.text, s.probability, KINDS.get(s.kind, "unknown")) for s in response.suggestions],
                 Autocorrect(fix.original, fix.replacement, round(fix.confidence, 4), fix.separator_length) if fix else None)


def _target(addresses: str | list[str]) -> str:
    if isinstance(addresses, str):
        return addresses
    if len(addresses) == 1:
        return addresses[0]
    return "ipv4:" + ",".join(addresses)  # a static list, balanced round-robin


def channel_options(retries: int) -> list[tuple[str, object]]:
    config = {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [{
            "name": [{"service": SERVICE}],
            "retryPolicy": {"maxAttempts": max(2, min(retries + 1, 5)), "initialBackoff": "0.1s", "maxBackoff": "2s",
                            "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]},
        }],
    }
    return [("grpc.service_config", json.dumps(config)), ("grpc.enable_retries", 1 if retries else 0),
            # a keyboard cannot wait gRPC's default 2 minutes of backoff to see its server again
            ("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2000)]


def make_channel(api, addresses, retries: int, tls: bool, root_certificates, certificate_chain, private_key):
    """A channel from `api` (grpc or grpc.aio): TLS when asked for, retries, round-robin."""
    options, target = channel_options(retries), _target(addresses)
    if tls or root_certificates or certificate_chain:
        creds = grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)
        return api.secure_channel(target, creds, options)
    return api.insecure_channel(target, options)


def with_token(metadata, token: str | None):
    """The shared-token header for servers started with --auth-token."""
    return [*(metadata or []), ("authorization", f"Bearer {token}")] if token else metadata


def stream_broke(error: grpc.RpcError, internal_before: bool) -> bool:
    """Did a typing stream break under us (resume it) rather than the server refuse? Yes for
    UNAVAILABLE; for INTERNAL only the first time in a keystroke: gRPC reports some lost
    connections (a server killed while a request was on its way) as INTERNAL, while a
    server's own INTERNAL comes back on the new stream too."""
    code = error.code()
    return code == grpc.StatusCode.UNAVAILABLE or (code == grpc.StatusCode.INTERNAL and not internal_before)


class Resumption:
    """When a typing session reopens its broken stream (both clients): after a backoff
    from 0.1 s to 1 s, for up to `seconds` in all."""

    def __init__(self, seconds: float):
        self.give_up, self.backoff, self.internal_before = time.monotonic() + seconds, 0.1, False

    def wait(self, error: grpc.RpcError, write_failed: bool = False) -> float | None:
        """Seconds to wait before reopening after `error`, or None: raise it."""
        if not (write_failed or stream_broke(error, self.internal_before)) or time.monotonic() > self.give_up:
            return None
        self.internal_before |= not write_failed and error.code() == grpc.StatusCode.INTERNAL
        wait, self.backoff = self.backoff, min(self.backoff * 2, 1.0)
        return wait


def wire_text(text: str) -> str:
    """Text that protobuf can send: surrogate pairs joined, lone surrogates as U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def predict_options(probability: bool, layout: str, exact_only: bool, user: str) -> pb.PredictOptions:
    return pb.PredictOptions(include_probability=probability, keyboard_layout=layout, exact_only=exact_only, user=user)


def add_address_flags(parser, timeout: float) -> None:
    """--address and --timeout, the same for every command that talks to a running server."""
    parser.add_argument("--address", default=None, help="server address host:port (default: localhost and the configured gRPC port)")
    parser.add_argument("--timeout", type=float, default=timeout, help="deadline for each call (seconds)")


def resolve_address(args) -> str:
    """The --address given, or localhost at the port `nextword serve` would use (NEXTWORD_GRPC_PORT)."""
    if args.timeout <= 0:
        raise ClientError(f"--timeout must be positive, got {args.timeout}")
    if args.address:
        return args.address
    from service.server.settings import from_args  # the one reader of NEXTWORD_* variables

    return f"localhost:{from_args().grpc_port}"


def require_server(address: str, within: float = 5.0) -> None:
    """Fail, with a hint, when nothing listens at a host:port address: at once where the
    connection is refused, after `within` seconds where it hangs. A plain TCP connect: a
    server that is only slow to answer (a busy machine) is not reported missing, and no
    gRPC channel is left polling. Other targets (dns:///, unix:) are left to gRPC."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "/" in host:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=within).close()
    except OSError:
        raise ClientError(f"no server at {address} — start one with scripts/serve") from None


class NextWordClient:
    def __init__(self, addresses: str | list[str] = "localhost:50051", *, timeout: float = 2.0, retries: int = 3,
                 tls: bool = False, root_certificates: bytes | None = None, certificate_chain: bytes | None = None,
                 private_key: bytes | None = None, metadata: list[tuple[str, str]] | None = None,
                 token: str | None = None):
        self.channel = make_channel(grpc, addresses, retries, tls, root_certificates, certificate_chain, private_key)
        self.stub = pb_grpc.NextWordStub(self.channel)
        self.timeout, self.metadata = timeout, with_token(metadata, token)

    def predict(self, text: str, k: int = 3, probability: bool = False, timeout: float | None = None, *,
                layout: str = "", exact_only: bool = False, user: str = "") -> Strip:
        """Suggestions for the text typed so far (a list, with `.autocorrect`). `layout`:
        qwerty, qwertz or azerty for typo tolerance; `exact_only`: no corrections; `user`:
        a signed user key (see `sign_user`), to mix in that user's own words."""
        request = pb.PredictRequest(text=wire_text(text), max_suggestions=k,
                                    options=predict_options(probability, layout, exact_only, user))
        response = self.stub.Predict(request, timeout=timeout or self.timeout, metadata=self.metadata, wait_for_ready=True)
        return strip_of(response)

    def learn(self, user: str, text: str, timeout: float | None = None) -> int:
        """Tell the server a message was sent, so the user's suggestions learn from it;
        returns the words counted (0: the store was down and it was not learned)."""
        request = pb.LearnRequest(user=user, text=wire_text(text))
        return self.stub.Learn(request, timeout=timeout or self.timeout, metadata=self.metadata, wait_for_ready=True).words

    def forget(self, user: str, timeout: float | None = None) -> None:
        """Delete everything the server keeps for the user, at once and for good."""
        self.stub.Forget(pb.ForgetRequest(user=user), timeout=timeout or self.timeout, metadata=self.metadata,
                         wait_for_ready=True)

    def model_info(self, timeout: float | None = None) -> pb.ModelInfo:
        return self.stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=timeout or self.timeout, metadata=self.metadata, wait_for_ready=True)

    def ping(self, timeout: float | None = None) -> None:
        self.stub.Ping(pb.PingRequest(), timeout=timeout or self.timeout, metadata=self.metadata, wait_for_ready=True)

    def session(self, k: int = 3, probability: bool = False, *, layout: str = "", exact_only: bool = False,
                user: str = "") -> "TypingSession":
        return TypingSession(self.stub, k, predict_options(probability, layout, exact_only, user), self.metadata)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_CLOSE = object()  # ends the request iterator of a sync stream


class TypingSession:
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
                if "edit" in input_:
                    input_ = {"text": new_text}  # a new stream starts from the whole text
        self.typed, self.model = new_text, model_of(response)
        return strip_of(response)

    def send(self) -> Strip:
        """The text was sent: the server learns it for the session's user and starts a new,
        empty message; returns the suggestions for its first word."""
        return self._send("", text=self.typed, send=True)

    def text(self, text: str) -> Strip:
        """Send the whole text typed so far."""
        text = wire_text(text)
        return self._send(text, text=text)

    def edit(self, delete: int = 0, insert: str = "") -> Strip:
        """Send what changed: `delete` characters removed from the end, then `insert` added."""
        insert = wire_text(insert)
        text = self.typed[: max(len(self.typed) - delete, 0)] + insert
        return self._send(text, edit=pb.TextEdit(delete=delete, insert=insert))

    def close(self) -> None:
        self._requests.put(_CLOSE)
        self._responses.cancel()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
