"""Typed text -> suggestions: validation, context state (cache, batcher), the strip.

No protobuf here (service/server/protocol.py converts); errors are domain exceptions that the
protocol layer maps to gRPC status codes in one place.

What the model reads for a context: <s> followed by the last `max_context_tokens` tokens
of the context. The cached path extends a parent context only while that holds, so an
answer never depends on what happens to be cached.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

from model.engine.personal import UserModel, learned_words
from model.engine.runtime import Runtime
from model.engine.strip import Strip, StripBuilder
from model.engine.suggest import blocklist, starts_sentence
from model.engine.text import BOS_ID, parent_context, split_normalized, split_typed, tokenize
from model.engine.layouts import LAYOUTS
from model.engine.typos import Autocorrect
from service.server.batching import MicroBatcher
from service.server.cache import ContextCache, Entry
from service.server.errors import InvalidInput
from service.server.settings import Settings

DEFAULT_SUGGESTIONS = 3


def check_length(text: str, limit: int) -> None:
    if len(text) > limit:
        raise InvalidInput(f"text is {len(text)} characters long; the limit is {limit}")


def _blank(text: str) -> bool:
    """Empty or only white space; isspace stops at the first letter, so no copy of the text."""
    return not text or text.isspace()


class Predictor:
    """One model's predictions: every model step goes through its batcher. `start()` before use."""

    def __init__(self, runtime: Runtime, settings: Settings, metrics):
        self.runtime, self.settings, self.metrics = runtime, settings, metrics
        self.batcher = MicroBatcher(runtime, metrics, settings.max_batch, settings.max_wait_us / 1e6, settings.max_queue)
        self.vocab = runtime.vocab
        self.strips = StripBuilder.open(runtime.vocab, runtime.dictionary_file if settings.dictionary else None,
                                        blocklist(settings.blocklist), settings.user_min_count, runtime.unigram_file)
        self.cache = ContextCache(settings.cache_size)
        self.root: Entry | None = None  # the state after <s>: every context starts from it
        self.leases = 0  # calls and streams answering from this model now
        self._idle = asyncio.Event()

    async def start(self) -> None:
        self.batcher.start()
        h, c = self.runtime.zero_state(1)
        logprobs, h, c = await self.batcher.step([BOS_ID], h[:, 0], c[:, 0])
        self.root = Entry(0, h, c, logprobs)

    @property
    def model_name(self) -> str:
        return self.runtime.name

    @property
    def model_version(self) -> str:
        return self.runtime.version

    def model_info(self) -> dict:
        """What GetModelInfo tells: identity, provider, sizes and the manifest's figures."""
        evaluation = self.runtime.manifest.get("evaluation") or {}
        return {"name": self.runtime.name, "version": self.runtime.version, "vocab_size": len(self.vocab),
                "provider": self.runtime.provider, "tokenizer_version": str(self.runtime.manifest.get("tokenizer_version", "")),
                "evaluation": evaluation.get("lstm") or {}, "baseline_evaluation": evaluation.get("trigram_kn") or {},
                "max_suggestions": self.settings.max_suggestions}

    @contextlib.contextmanager
    def lease(self):
        """Held by each call and stream, so a model swapped out keeps serving them to the end."""
        self.leases += 1
        self._idle.clear()
        try:
            yield self
        finally:
            self.leases -= 1
            if self.leases == 0:
                self._idle.set()

    async def idle(self) -> None:
        """Returns when no call or stream is using this model."""
        if self.leases:
            await self._idle.wait()

    async def retire(self) -> None:
        """After a swap: wait for the last call or stream on this model, then stop its batcher."""
        await self.idle()
        await self.close()

    async def close(self) -> None:
        await self.batcher.close()

    def check(self, text: str, k: int, layout: str) -> tuple[int, str]:
        """Validate a request; returns the number of suggestions to give and the layout."""
        check_length(text, self.settings.max_text_chars)
        k = k or DEFAULT_SUGGESTIONS
        if k > self.settings.max_suggestions:
            raise InvalidInput(f"max_suggestions is {k}; this server gives at most {self.settings.max_suggestions}")
        layout = layout or self.settings.keyboard_layout
        if layout not in LAYOUTS:
            raise InvalidInput(f"keyboard_layout must be one of {', '.join(LAYOUTS)}, not {layout[:20]!r}")
        return k, layout

    async def predict(self, text: str, k: int, cache: ContextCache | None = None, *,
                      layout: str = "", exact_only: bool = False, user: UserModel | None = None) -> Strip:
        """The strip for the text typed so far; with corrections unless exact_only; with
        the user's own words mixed in when there is a user model."""
        k, layout = self.check(text, k, layout)
        cache = self.cache if cache is None else cache
        context, partial = split_typed(text)
        entry = await self.entry(context, cache)
        strip = Strip(self.strips.candidates(entry.logprobs, context, partial, k, layout, user, corrections=not exact_only))
        if not partial and not exact_only:
            strip.autocorrect = await self._autocorrect(context, cache, layout, user)
        return strip

    async def evidence(self, user: UserModel, message: str, cache: ContextCache | None = None,
                       accepted: Counter[str] | None = None) -> dict[str, int]:
        """The entries that move the user's scale for a message they sent (model/engine/personal.py:
        Personalizer.evidence): the LSTM's rows before its learned words, from the context cache
        (a stream's keystrokes left them there), computed where missing; `accepted`: the
        lower-cased words a stream accepted from the strip, and how often."""
        accepted = Counter(accepted or ())
        cache = self.cache if cache is None else cache
        text, words = learned_words(message, self.strips.looks_random)  # bounded: learnable.MAX_CHUNKS, EVIDENCE_WORDS
        sent = []
        for _, start, word in words:
            context, partial = split_normalized(text[:start])
            if not partial:  # a word glued to the token before it has no row of its own here
                chosen = accepted[word] > 0
                accepted[word] -= chosen
                sent.append(((await self.entry(context, cache)).logprobs, context, word, chosen))
        return self.strips.personalizer.evidence(user, sent)

    async def _autocorrect(self, context: str, cache: ContextCache, layout: str, user: UserModel | None) -> Autocorrect | None:
        """Autocorrect for a word that the last character (a separator) just finished."""
        before, word = split_normalized(context[:-1])  # the context is normalized already
        if not word or not self.strips.may_autocorrect(word, user):
            return None  # the common case, a known word (or one the user sends): no model state needed
        entry = await self.entry(before, cache)  # the context the word was typed in: usually cached
        return self.strips.autocorrect(entry.logprobs, word, starts_sentence(before), layout, user)

    async def entry(self, context: str, cache: ContextCache) -> Entry:
        """The model's state after a context: cached, extended from its parent, or computed."""
        if _blank(context):
            return self.root
        entry = cache.get(context)
        if entry is not None:
            self.metrics.cache_hits.inc()
            return entry
        parent_text = parent_context(context)
        parent = self.root if _blank(parent_text) else cache.get(parent_text)
        new = self.vocab.encode(tokenize(context[len(parent_text):])) if parent is not None else []
        if parent is not None and parent.tokens + len(new) <= self.settings.max_context_tokens:
            self.metrics.cache_hits.inc()
            entry = await self._extend(parent, new)
        else:
            self.metrics.cache_misses.inc()
            ids = self.vocab.encode(tokenize(context))[-self.settings.max_context_tokens:]
            entry = await self._extend(self.root, ids)
        cache.put(context, entry)
        if cache is self.cache:
            self.metrics.cache_entries.set(len(cache))
        return entry

    async def _extend(self, parent: Entry, ids: list[int]) -> Entry:
        if not ids:
            return parent
        logprobs, h, c = await self.batcher.step(ids, parent.h, parent.c)
        return Entry(parent.tokens + len(ids), h, c, logprobs)
