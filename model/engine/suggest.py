"""From next-token log-probabilities to the suggestion strip (pure NumPy, no torch).

Shared by `nextword evaluate` (keystroke savings) and the service, so the figures the
evaluation prints are what a user of the service gets.

- Only words are suggested (a token with a letter; no punctuation, numbers, specials).
- A partial word restricts the candidates to words that start with it (case-insensitive).
  Words are kept sorted by their lower-cased form, so the candidates for any prefix are
  one contiguous slice found by binary search: no scan of the vocabulary per keystroke.
- Keyboard casing: a typed prefix keeps its case ("Hel" -> "Hello", "HEL" -> "HELLO"),
  a word's usual form is kept where it has capitals ("I'm", "Provo"), and the first word
  of a message or sentence is capitalised.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from model.engine.text import SENTENCE_END, Vocab, is_word

_AFTER_ALL = "\U0010ffff"  # sorts after any character: [p, p + _AFTER_ALL) holds all words starting with p


@dataclass(frozen=True)
class Candidate:
    """A word for the strip, before the protocol layer turns it into a response."""

    text: str
    token_id: int
    logprob: float            # the model's log-probability of the word
    completion: bool          # True: completes the partial word; False: a next word
    correction: bool = False  # True: completes what the partial word was probably meant to be


class Suggester:
    def __init__(self, vocab: Vocab):
        self.vocab = vocab
        words = [(t.lower(), i) for i, t in enumerate(vocab.tokens) if is_word(t)]
        words.sort()
        self.keys = [k for k, _ in words]
        self.ids = np.array([i for _, i in words], dtype=np.int64)

    def candidates(self, prefix: str) -> np.ndarray:
        """Ids of the words that start with prefix (all words for ''); the prefix comes
        normalized, as split_typed and token_spans give it."""
        p = prefix.lower()
        lo = bisect.bisect_left(self.keys, p)
        hi = bisect.bisect_left(self.keys, p + _AFTER_ALL, lo)
        return self.ids[lo:hi]

    def top(self, logprobs: np.ndarray, prefix: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k most likely words starting with prefix: (ids, logprobs), best first."""
        ids = self.candidates(prefix)
        scores = logprobs[ids]
        if len(ids) > k:
            keep = np.argpartition(-scores, k)[:k]
            ids, scores = ids[keep], scores[keep]
        order = np.argsort(-scores, kind="stable")
        return ids[order], scores[order]

    def strip(self, logprobs: np.ndarray, context: str, partial: str, k: int) -> list[Candidate]:
        """The suggestion strip for typed text split into (context, partial word), given the
        model's next-token logprobs after the context."""
        ids, scores = self.top(logprobs, partial, k)
        capital = starts_sentence(context)
        return [Candidate(cased(self.vocab.tokens[i], partial, capital), int(i), float(s), bool(partial))
                for i, s in zip(ids, scores)]


def starts_sentence(context: str) -> bool:
    """True when the next word begins a message or a sentence. Looks only at the end of
    the context (".!?" are always tokens of their own): per-keystroke cost stays flat."""
    end = len(context)
    while end and context[end - 1].isspace():
        end -= 1
    return end == 0 or context[end - 1] in SENTENCE_END


def cased(word: str, partial: str, sentence_start: bool) -> str:
    """Keyboard casing of a suggested word (its usual written form) for what was typed."""
    if partial:
        if partial.isupper() and sum(c.isalpha() for c in partial) > 1:  # caps lock, not "I'"
            return word.upper()
        if partial.islower() and not word.islower():
            return word  # a proper noun or "I...": its own capitals win
        rest = word[len(partial):] if word[: len(partial)].lower() == partial.lower() else None
        return partial + rest if rest is not None else word
    if sentence_start:
        return word[:1].upper() + word[1:]
    return word
