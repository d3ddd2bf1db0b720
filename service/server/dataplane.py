"""The data plane: what a request means, with no transport in it (what MLServer's data
plane is to its gRPC servicers). service/server/protocol.py turns protobuf into these calls
and their answers and errors (service/server/errors.py) back; tests drive it directly.

- Which user: a request's key becomes the store's id (security.UserKeys), or PersonalOff on a
  server without a user store.
- Which model: each call and stream leases the model serving when it starts, and keeps it
  to the end (a hot swap never changes a stream's model under it).
- Draining: from `drain()` on, every new call and new stream is Unavailable (clients retry
  on another instance), while streams already open go on; from `end_streams()` on (the
  server calls it after a short refusal window), a stream's next keystroke is Unavailable
  too, and a stream waiting for one is ended so at once: no typist holds a stopping server
  for its whole grace period, and no stream is cut off with CANCELLED.
- A typing session (`Typing`): its text, whole or by edits, and `send`: the message is
  learned for the user, and the session starts the next one. A message any part of which
  was typed in incognito is never learned, whatever its `send` says: the session remembers
  until the message is sent or its text is emptied.
- Incognito: nothing is learned, and nothing the user taught is suggested; the words the user
  removed (Forget with a word) stay removed, as a person who removed a word expects.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass

from model.engine.learnable import secret
from model.engine.personal import MAX_COUNT, MIN_COUNT, UserModel
from model.engine.strip import Strip
from model.engine.text import is_word, tokenize
from service.server.cache import ContextCache
from service.server.errors import Busy, InvalidInput, PersonalOff, Unavailable
from service.server.predictor import Predictor, check_length
from service.server.security import UserKeys
from service.server.users.layer import Learned, Outcome, Users
from service.server.users.store import Forgotten, Snapshot

STREAM_CACHE = 4  # contexts a typing session keeps for itself: a keystroke never costs more than one step
MAX_IMPORT = 10_000  # words one Import may carry
MAX_WORD = 64        # letters of a word to forget or import, at most
SHUTTING_DOWN = "server is shutting down; try again (another instance)"


@dataclass(frozen=True)
class Ask:
    """How a request wants its strip."""
    k: int = 0              # suggestions; 0: the default
    layout: str = ""        # keyboard layout for typos; "": the server's
    exact_only: bool = False
    user: str = ""          # a user key; "": nobody
    incognito: bool = False  # nothing learned, nothing the user taught shown (removed words stay removed)


@dataclass(frozen=True)
class Change:
    """One message of a typing session: the whole text, or an edit (characters to delete from
    the end, text to add), or neither with `send`."""
    text: str | None = None
    edit: tuple[int, str] | None = None
    send: bool = False
    accepted: bool = False  # the change put in a word the strip offered


@dataclass
class Answer:
    strip: Strip
    model: tuple[str, str]          # name and version of the model that answered
    learned: Learned | None = None  # a session's `send` with a user: what became of the message


class DataPlane:
    """Every call the server answers and its typing sessions, whatever the transport."""

    def __init__(self, predictor: Predictor, metrics, max_streams: int, max_text_chars: int,
                 users: Users | None = None, keys: UserKeys | None = None, min_count: int = MIN_COUNT):
        self.predictor = predictor  # the current model: new calls and streams take it
        self.metrics, self.max_streams, self.max_text_chars = metrics, max_streams, max_text_chars
        self.min_count = min_count  # an imported word without a count is counted this often: suggested at once
        self.users, self.keys = users, keys  # None: --user-store off
        self.open_streams = 0
        self.draining = asyncio.Event()
        self.ending = asyncio.Event()  # open streams end at their next keystroke

    def swap(self, predictor: Predictor) -> None:
        """A new model for new calls; calls and streams already running keep theirs."""
        self.predictor = predictor

    def drain(self) -> None:
        """From now on new calls and keystrokes are refused (Unavailable); calls in flight go on."""
        self.draining.set()

    def end_streams(self) -> None:
        """Open streams end (Unavailable) at their next keystroke, or at once if waiting for one."""
        self.ending.set()

    def admit(self, event: asyncio.Event | None = None) -> None:
        if (event or self.draining).is_set():
            raise Unavailable(SHUTTING_DOWN)

    # ---- calls -------------------------------------------------------------------------

    async def predict(self, text: str, ask: Ask) -> Answer:
        self.admit()
        with self.predictor.lease() as predictor:
            return await self._answer(predictor, text, ask)

    async def learn(self, key: str, text: str) -> Learned:
        self.admit()
        return await self.learn_sent(key, text)

    async def learn_sent(self, key: str, text: str, cache: ContextCache | None = None,
                         accepted: Counter[str] | None = None) -> Learned:
        """Learning without admission: a stream's `send` is part of a session already admitted
        (its cache holds the model's rows for what it typed; `accepted`: the words it took from the strip)."""
        check_length(text, self.max_text_chars)
        user = self._user(key, "learning")
        return await self.users.learn(user, text, self.predictor.strips.looks_random,
                                      lambda model: self.predictor.evidence(model, text, cache, accepted))

    async def forget(self, key: str, word: str = "") -> Forgotten:
        self.admit()
        user = self._user(key, "forgetting")
        if not word:
            return await self.users.forget(user)
        if len(word.split()) != 1 or len(word) > MAX_WORD:
            raise InvalidInput("forgetting a word needs one word (no spaces)")
        return await self.users.forget_word(user, word.strip())

    async def export(self, key: str) -> Snapshot:
        self.admit()
        user = self._user(key, "export")
        return await self.users.export(user)

    async def import_words(self, key: str, words: list[tuple[str, int]]) -> tuple[Learned, list[str]]:
        """A personal word list into the user's model: (what became of it, the words refused:
        not one word, or what looks like a secret)."""
        self.admit()
        user = self._user(key, "import")
        if len(words) > MAX_IMPORT:
            raise InvalidInput(f"{len(words)} words to import; at most {MAX_IMPORT} a call")
        counts, refused = {}, []
        for word, count in words:
            if (is_word(word) and len(tokenize(word)) == 1 and len(word) <= MAX_WORD
                    and not secret(word, self.predictor.strips.looks_random)):
                counts[word] = min(counts.get(word, 0) + (count or self.min_count), MAX_COUNT)
            else:
                refused.append(word)
        return await self.users.add(user, counts), refused

    def model_info(self) -> dict:
        self.admit()
        return self.predictor.model_info()

    # ---- typing sessions -----------------------------------------------------------------

    @contextlib.contextmanager
    def typing(self):
        """A typing session for one stream, on the model serving now; Busy past --max-streams."""
        self.admit()
        if self.open_streams >= self.max_streams:
            raise Busy(f"server busy: {self.open_streams} typing sessions open")
        self.open_streams += 1
        self.metrics.streams.inc()
        try:
            with self.predictor.lease() as predictor:
                yield Typing(self, predictor)
        finally:
            self.open_streams -= 1
            self.metrics.streams.dec()

    # ---- shared by calls and sessions ------------------------------------------------------

    async def _answer(self, predictor: Predictor, text: str, ask: Ask, cache: ContextCache | None = None) -> Answer:
        model = await self._model(ask.user)
        if model is not None and ask.incognito:  # only what the user removed: nothing they taught
            model = UserModel(suppressed=model.suppressed)
        strip = await predictor.predict(text, ask.k, cache, layout=ask.layout, exact_only=ask.exact_only, user=model)
        return Answer(strip, (predictor.model_name, predictor.model_version))

    async def _model(self, key: str) -> UserModel | None:
        if not key:
            return None
        user = self._user(key)
        return await self.users.model(user)

    def _user(self, key: str, needed_for: str = "") -> str:
        """The store's id for a user key."""
        if self.users is None:
            raise PersonalOff("this server keeps no users (--user-store off): send no user")
        if not key:
            raise InvalidInput(f"{needed_for} needs a user key")
        return self.keys.store_id(key)


class Typing:
    """One typing session (a PredictStream): its text and its own small cache of contexts."""

    def __init__(self, plane: DataPlane, predictor: Predictor):
        self.plane, self.predictor = plane, predictor
        self.text = ""
        self.incognito = False  # some of this message was typed in incognito: it is never learned
        self.accepted: Counter[str] = Counter()  # words of this message taken from the strip (lower-cased)
        self.cache = ContextCache(STREAM_CACHE)

    async def keystroke(self, change: Change, ask: Ask) -> Answer:
        self.plane.admit(self.plane.ending)
        self._apply(change)
        self.incognito = bool(self.text) and (self.incognito or ask.incognito)
        if change.accepted and (words := [t for t in tokenize(self.text[-2 * MAX_WORD:]) if is_word(t)]):
            self.accepted[words[-1].lower()] += 1
        elif not self.text:
            self.accepted.clear()
        learned = None
        if change.send:  # the message went out: learn it, start the next one
            if ask.user and (ask.incognito or self.incognito):
                learned = Learned(0, Outcome.INCOGNITO)
            elif ask.user:
                learned = await self.plane.learn_sent(ask.user, self.text, self.cache, self.accepted)
            self.text, self.incognito = "", False
            self.accepted.clear()
        answer = await self.plane._answer(self.predictor, self.text, ask, self.cache)
        answer.learned = learned
        return answer

    def _apply(self, change: Change) -> None:
        if change.text is not None:
            self.text = change.text
        elif change.edit is not None:
            delete, insert = change.edit
            if delete > len(self.text):
                raise InvalidInput(f"edit deletes {delete} characters but the text has only {len(self.text)}")
            self.text = self.text[: len(self.text) - delete] + insert
        elif not change.send:
            raise InvalidInput("stream message has neither text nor edit (nor send)")

    async def next(self, keystroke):
        """The session's next message (awaitable `keystroke`), unless the server ends its
        streams first: then Unavailable, and the wait is given up."""
        reading = asyncio.ensure_future(keystroke)
        ending = asyncio.ensure_future(self.plane.ending.wait())
        try:
            await asyncio.wait((reading, ending), return_when=asyncio.FIRST_COMPLETED)
        finally:
            ending.cancel()
            if not reading.done():
                reading.cancel()
        if not reading.done() or reading.cancelled():
            raise Unavailable(SHUTTING_DOWN)
        return reading.result()
