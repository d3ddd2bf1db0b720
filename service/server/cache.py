"""The state cache: model state and next-token log-probabilities per context, LRU-bounded.

A context is the typed text before the word being typed (model.engine.text.split_typed). Its
entry holds everything a suggestion needs, so every keystroke inside a word is answered
from the cache with no model step, and finishing a word costs one step from the cached
entry of the context before it. Memory is bounded by the number of entries.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Entry:
    tokens: int              # how many tokens of the context the model has read
    h: np.ndarray            # (layers, hidden) state after them
    c: np.ndarray
    logprobs: np.ndarray     # (vocab,) log P(next token | context)


class ContextCache:
    """Least-recently-used map: context text -> Entry. Used from the event loop only."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def get(self, context: str) -> Entry | None:
        entry = self._entries.get(context)
        if entry is not None:
            self._entries.move_to_end(context)
        return entry

    def put(self, context: str, entry: Entry) -> None:
        self._entries[context] = entry
        self._entries.move_to_end(context)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

