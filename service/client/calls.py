"""The client API, written once: every call and the typing session's text bookkeeping.

`NextWordClient` (client.py) and `AsyncNextWordClient` (async_client.py) differ only in how
a call goes over the wire: each implements `_unary` and `_pages` (and its session `_send`),
blocking or as a coroutine; every method here returns what those return, so on the asyncio
client each call is awaited. Every call but a typing stream has a deadline: the client's
`timeout`, or the one given to the call; wait-for-ready and retries come from the channel's
service config (common.channel_options).
"""
from __future__ import annotations

from service.api.nextword.v1 import nextword_pb2 as pb
from service.client.common import export_of, import_request, learned_of, predict_options, strip_of, wire_text


class Calls:
    """NextWord's calls, over `_unary(method, request, convert, timeout)` and `_pages(...)`."""

    stub: object
    timeout: float
    metadata: list[tuple[str, str]] | None

    def predict(self, text: str, k: int = 3, probability: bool = False, timeout: float | None = None, *,
                layout: str = "", exact_only: bool = False, user: str = "", incognito: bool = False):
        """Suggestions for the text typed so far (a Strip: a list, with `.autocorrect`). `layout`:
        qwerty, qwertz or azerty for typo tolerance; `exact_only`: no corrections; `user`:
        a signed user key (see `sign_user`), to mix in that user's own words."""
        request = pb.PredictRequest(text=wire_text(text), max_suggestions=k,
                                    options=predict_options(probability, layout, exact_only, user, incognito))
        return self._unary("Predict", request, strip_of, timeout)

    def learn(self, user: str, text: str, timeout: float | None = None):
        """Tell the server a message was sent, so the user's suggestions learn from it; the
        answer (Learned) says what became of it (`.kept`, `.words`, `.outcome`)."""
        return self._unary("Learn", pb.LearnRequest(user=user, text=wire_text(text)), learned_of, timeout)

    def forget(self, user: str, word: str = "", timeout: float | None = None):
        """Delete everything the server keeps for the user, at once and for good; with `word`,
        only that word ("remove this suggestion": not suggested to them until sent again).
        True when no file of the store holds it any more (ForgetResponse.wiped)."""
        return self._unary("Forget", pb.ForgetRequest(user=user, word=word), lambda r: r.wiped, timeout)

    def export(self, user: str, timeout: float | None = None):
        """Everything the server keeps for the user, as documented JSON (README, "Privacy"),
        however much (ExportStream)."""
        return self._pages("ExportStream", pb.ExportRequest(user=user), export_of, timeout)

    def import_words(self, user: str, words, timeout: float | None = None):
        """Add a personal word list (a dict of word -> count, or words) to the user's model."""
        return self._unary("Import", import_request(user, words), learned_of, timeout)

    def model_info(self, timeout: float | None = None):
        """The serving model's ModelInfo."""
        return self._unary("GetModelInfo", pb.GetModelInfoRequest(), lambda r: r, timeout)

    def ping(self, timeout: float | None = None):
        """An empty call (the floor of the service's latency)."""
        return self._unary("Ping", pb.PingRequest(), lambda r: None, timeout)

    def _options(self, timeout: float | None) -> dict:
        return {"metadata": self.metadata, "timeout": timeout or self.timeout}


class Typing:
    """A typing session's text and options, written once: `text`, `edit` and `send` say what
    changed; the subclass's `_send(new_text, **input)` carries it over its stream. The options
    go with every keystroke, so incognito can be switched on and off between keystrokes."""

    def __init__(self, stub, k: int, options: pb.PredictOptions, metadata=None, resume_seconds: float = 10.0):
        self.k, self.options, self.sequence = k, options, 0
        self.stub, self.metadata, self.resume_seconds = stub, metadata, resume_seconds
        self.model: tuple[str, str] | None = None  # (name, version) of the model that last answered
        self.typed = ""                              # the session's text, as the server has it
        self.resumed = 0                             # how many times the stream was reopened

    @property
    def incognito(self) -> bool:
        return self.options.incognito

    @incognito.setter
    def incognito(self, on: bool) -> None:
        self.options.incognito = on

    def send(self):
        """The text was sent: the server learns it for the session's user and starts a new,
        empty message; returns the suggestions for its first word."""
        return self._send("", text=self.typed, send=True)

    def text(self, text: str, accepted: bool = False):
        """Send the whole text typed so far; `accepted`: the change put in a word the strip offered."""
        text = wire_text(text)
        return self._send(text, text=text, accepted=accepted)

    def edit(self, delete: int = 0, insert: str = "", accepted: bool = False):
        """Send what changed: `delete` characters removed from the end, then `insert` added;
        `accepted`: the insert is a word the strip offered (Tab, a tap), evidence for the user's model."""
        insert = wire_text(insert)
        text = self.typed[: max(len(self.typed) - delete, 0)] + insert
        return self._send(text, edit=pb.TextEdit(delete=delete, insert=insert), accepted=accepted)

    def _request(self, **input_) -> pb.StreamRequest:
        return pb.StreamRequest(max_suggestions=self.k, sequence=self.sequence, options=self.options, **input_)

    def _resumed(self, new_text: str, input_: dict) -> dict:
        """What a reopened stream is sent: it starts from the whole text."""
        self.resumed += 1
        if "edit" in input_:
            return {"text": new_text, "accepted": input_.get("accepted", False)}
        return input_

    def _answered(self, new_text: str, response: pb.PredictResponse):
        self.typed, self.model = new_text, (response.model_name, response.model_version)
        return strip_of(response)
