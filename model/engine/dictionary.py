"""The main dictionary: the words a keyboard knows beyond its LSTM's vocabulary.

Pure Python + NumPy (no torch): the service and `nextword evaluate` share it. The file
(`dictionary.txt` in the model directory, model/export/dictionary.py builds it) holds one
word a line in its usual written form ("indefatigable", "Utah") with its Zipf frequency
(log10 of its count per billion words), most frequent first.

How a word outside the vocabulary is ranked (docs/DESIGN.md, "The main dictionary"): the
LSTM gives the unknown word a probability, P(<unk> | context); the dictionary's words
outside the vocabulary split it by their share of those words' frequency mass,

    log P(w | context) = log P(<unk> | context) + log share(w),

a class-based split that keeps the strip one probability: a dictionary word beats an LSTM
word exactly when it is more likely. Within a prefix the shares alone rank the dictionary's
words, so the best of each prefix are found once and cached.
"""
from __future__ import annotations

import bisect
import functools
import math
from collections import Counter
from pathlib import Path

import numpy as np
from cachetools import LRUCache

from model.engine.suggest import shown
from model.engine.text import Vocab

_AFTER_ALL = "\U0010ffff"  # sorts after any character: [p, p + _AFTER_ALL) holds all words starting with p
TOP_CACHE = 16384          # prefixes whose best dictionary words are kept
RANDOM_BELOW = -3.8        # mean log-probability per letter under which a word's letters look random
RANDOM_FROM = 6            # letters a word needs before its letters are judged


class DictionaryError(ValueError):
    """The dictionary file is unreadable or malformed."""


def read_entries(path: Path) -> list[tuple[str, float]]:
    """(word, zipf) of each line of a dictionary file."""
    entries = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            word, _, zipf = line.rstrip("\n").partition("\t")
            try:
                entries.append((word, float(zipf)))
            except ValueError:
                raise DictionaryError(f"{path}:{n}: expected a word, a tab and its Zipf frequency") from None
    return entries


class Dictionary:
    """A main dictionary beside a vocabulary: `knows` covers all its words; the words outside
    the vocabulary that the strip may show (not blocked) are candidates, sorted by spelling."""

    def __init__(self, entries: list[tuple[str, float]], vocab: Vocab, blocked: frozenset[str] = frozenset()):
        self.size = len(entries)
        in_vocab = {t.lower() for t in vocab.tokens}
        self.in_vocab = frozenset(w for w in (word.lower() for word, _ in entries) if w in in_vocab)
        extra = sorted((word.lower(), word, zipf) for word, zipf in entries
                       if word.lower() not in in_vocab and word.lower() not in blocked and shown(word))
        self.keys = [low for low, _, _ in extra]
        self.forms = [low if form == low else form for low, form, _ in extra]  # one string where they agree: memory
        weights = np.array([zipf for _, _, zipf in extra], np.float64) * math.log(10)
        mass = float(np.logaddexp.reduce(weights)) if len(weights) else 0.0
        self.logshare = (weights - mass).astype(np.float32)  # log of each word's share of the <unk> probability
        self._top: LRUCache = LRUCache(TOP_CACHE)

    @classmethod
    def load(cls, path: Path, vocab: Vocab, blocked: frozenset[str] = frozenset()) -> "Dictionary":
        return cls(read_entries(path), vocab, blocked)

    def __len__(self) -> int:
        return len(self.keys)

    @functools.cached_property
    def letters(self) -> "LetterModel":
        """What the letters of a word look like, from the dictionary's own words (built on first use: ~1 s)."""
        return LetterModel(self.keys + sorted(self.in_vocab))

    def looks_random(self, word: str) -> bool:
        """An unknown word whose letters are improbable for a word of the language ("qzvkxbt"):
        the dictionary's share of the secrets rules (model/engine/learnable.py)."""
        low = word.lower()
        return len(low) >= RANDOM_FROM and not self.knows(low) and self.letters.mean_logprob(low) < RANDOM_BELOW

    def knows(self, word: str) -> bool:
        """A word of the dictionary (in or out of the vocabulary; not one of the blocklist), case aside."""
        low = word.lower()
        return low in self.in_vocab or self.find(low) >= 0

    def find(self, low: str) -> int:
        """The index of a lower-cased candidate, or -1."""
        i = bisect.bisect_left(self.keys, low)
        return i if i < len(self.keys) and self.keys[i] == low else -1

    def span(self, prefix: str) -> tuple[int, int]:
        """The candidates that start with a lower-cased prefix: keys[lo:hi]."""
        lo = bisect.bisect_left(self.keys, prefix)
        return lo, bisect.bisect_left(self.keys, prefix + _AFTER_ALL, lo)

    def has_prefix(self, prefix: str) -> bool:
        lo = bisect.bisect_left(self.keys, prefix)
        return lo < len(self.keys) and self.keys[lo].startswith(prefix)

    def top(self, prefix: str, k: int) -> np.ndarray:
        """Indexes of the k most frequent candidates starting with a lower-cased prefix, best
        first. Cached: it does not depend on the context."""
        key = (prefix, k)
        found = self._top.get(key)
        if found is None:
            lo, hi = self.span(prefix)
            shares = self.logshare[lo:hi]
            best = np.argpartition(-shares, k)[:k] if hi - lo > k else np.arange(hi - lo)
            found = lo + best[np.argsort(-shares[best], kind="stable")]
            self._top[key] = found
        return found


class LetterModel:
    """A letter trigram model of a word list (add-0.1 smoothing, "^^" before and "$" after a
    word). Chosen by measurement on the shipped dictionary (docs/DESIGN.md): below -3.8 nats a
    letter lie 95% of random strings of 6+ letters and 4 of 244 chat words of the vocabulary
    that the dictionary lacks ("doesnt", "omgosh")."""

    SMOOTHING = 0.1

    def __init__(self, words: list[str]):
        text = "".join(f"^^{w}$" for w in words)
        self.trigrams = Counter(a + b + c for a, b, c in zip(text, text[1:], text[2:]) if b != "$" and a != "$")
        self.pairs: Counter[str] = Counter()
        for gram, n in self.trigrams.items():
            self.pairs[gram[:2]] += n
        self.alphabet = len({c for gram in self.trigrams for c in gram})

    def mean_logprob(self, word: str) -> float:
        padded = f"^^{word}$"
        total = sum(math.log((self.trigrams[padded[i - 2:i + 1]] + self.SMOOTHING)
                             / (self.pairs[padded[i - 2:i]] + self.SMOOTHING * self.alphabet)) for i in range(2, len(padded)))
        return total / (len(padded) - 2)
