"""What both Python clients share besides the calls (calls.py): the strip as Python objects,
the channel (retries, round-robin, TLS, wait-for-ready, the token), when a typing session resumes,
and text protobuf can carry."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import grpc

from model.engine.errors import UserError
from service.api.nextword.v1 import nextword_pb2 as pb

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
    """The suggestions, best first (a list of Suggestion), `autocorrect` (or None), and
    after a session's `send`, `learned` (what became of the message; None otherwise)."""

    def __init__(self, suggestions, autocorrect: Autocorrect | None = None, learned=None):
        super().__init__(suggestions)
        self.autocorrect, self.learned = autocorrect, learned


def strip_of(response: pb.PredictResponse) -> Strip:
    fix = response.autocorrect if response.HasField("autocorrect") else None
    return Strip([Suggestion(s.text, s.probability, KINDS.get(s.kind, "unknown")) for s in response.suggestions],
                 Autocorrect(fix.original, fix.replacement, round(fix.confidence, 4), fix.separator_length) if fix else None,
                 learned_of(response.learned) if response.HasField("learned") else None)


def _target(addresses: str | list[str]) -> str:
    if isinstance(addresses, str):
        return addresses
    if len(addresses) == 1:
        return addresses[0]
    return "ipv4:" + ",".join(addresses)  # a static list, balanced round-robin


def channel_options(retries: int) -> list[tuple[str, object]]:
    """The channel's service config: every call waits for the server to be reachable and is
    retried on UNAVAILABLE. (Deadlines are the client's, per call: with a deadline in the
    config too, grpcio failed a call at once with DEADLINE_EXCEEDED after others had timed out.)"""
    config = {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [{
            "name": [{"service": SERVICE}], "waitForReady": True,
            "retryPolicy": {"maxAttempts": max(2, min(retries + 1, 5)), "initialBackoff": "0.1s", "maxBackoff": "2s",
                            "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]},
        }],
    }
    return [("grpc.service_config", json.dumps(config)), ("grpc.enable_retries", 1 if retries else 0),
            # a keyboard cannot wait gRPC's default 2 minutes of backoff to see its server again
            ("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2000)]


def make_channel(api, addresses, retries: int, tls: bool, root_certificates, certificate_chain, private_key):
    """A channel from `api` (grpc or grpc.aio): TLS when asked for, retries, round-robin, wait-for-ready."""
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


def predict_options(probability: bool, layout: str, exact_only: bool, user: str, incognito: bool = False) -> pb.PredictOptions:
    return pb.PredictOptions(include_probability=probability, keyboard_layout=layout, exact_only=exact_only, user=user,
                             incognito=incognito)


@dataclass(frozen=True)
class Learned:
    """What became of a sent message (or of imported words): `kept` only when "learned"."""
    words: int
    outcome: str    # learned, nothing_to_learn, store_down, busy, incognito (LearnResponse.Outcome, lower-cased)
    refused: tuple[str, ...] = ()  # Import: the words left out (not a word, or looks like a secret)

    @property
    def kept(self) -> bool:
        return self.outcome == "learned"


def learned_of(response) -> Learned:
    """A LearnResponse or ImportResponse as Python."""
    return Learned(response.words, pb.LearnResponse.Outcome.Name(response.outcome).lower(),
                   tuple(getattr(response, "refused", ())))


def import_request(user: str, words) -> pb.ImportRequest:
    """words: a dict of word -> count, or words (each counted as the server's --user-min-count)."""
    counts = words.items() if isinstance(words, dict) else ((w, 0) for w in words)
    return pb.ImportRequest(user=user, words=[pb.ImportRequest.Word(word=wire_text(w), count=c) for w, c in counts])


def export_of(pages) -> dict:
    """Everything stored for a user, from the pages of an ExportStream (or one Export), as the
    JSON README documents (section "Privacy")."""
    data = {"entries": [], "suppressed": []}
    for page in pages:
        data["entries"] += [{"text": e.text, "count": e.count, "last_seen": e.last_seen} for e in page.entries]
        data["suppressed"] += list(page.suppressed)
    return data
