"""The state cache: model state and next-token log-probabilities per context, LRU-bounded.

A context is the typed text before the word being typed (model.engine.text.split_typed). Its
entry holds everything a suggestion needs, so every keystroke inside a word is answered
from the cache with no model step, and finishing a word costs one step from the cached
entry of the context before it. Memory is bounded by the number of entries.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from cachetools import LRUCache


@dataclass(frozen=True)
class Entry:
    tokens: int              # how many tokens of the context the model has read
    h: np.ndarray            # (layers, hidden) state after them
    c: np.ndarray
    logprobs: np.ndarray     # (vocab,) log P(next token | context)


class ContextCache(LRUCache):
    """Least-recently-used map: context text -> Entry (cachetools). Used from the event loop only."""

    def put(self, context: str, entry: Entry) -> None:
        self[context] = entry
