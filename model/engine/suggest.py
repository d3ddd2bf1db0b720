"""From next-token log-probabilities to the suggestion strip (pure NumPy, no torch).

Shared by `nextword evaluate` (keystroke savings) and the service, so the figures the
evaluation prints are what a user of the service gets.

- Only words are shown (`shown`): letters with inner apostrophes or hyphens; no punctuation,
  numbers or special tokens, no stray single letters ("a" and "I" only, or the very letter
  typed), no elongations ("soooo", "hmmm") unless what was typed already is one, and no
  word of the deployment's blocklist (`--blocklist`; unless the user sent it, model/engine/personal.py).
- A partial word restricts the candidates to words that start with it (case-insensitive).
  Words are kept sorted by their lower-cased form, so the candidates for any prefix are
  one contiguous slice found by binary search: no scan of the vocabulary per keystroke.
- Keyboard casing: a typed prefix keeps its case ("Hel" -> "Hello", "HEL" -> "HELLO"),
  a word's usual form is kept where it has capitals ("I'm", "Provo"), and the first word
  of a message or sentence is capitalised.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.engine.errors import UserError
from model.engine.text import SENTENCE_END, Vocab, is_word

_AFTER_ALL = "\U0010ffff"  # sorts after any character: [p, p + _AFTER_ALL) holds all words starting with p
SINGLE_LETTER_WORDS = frozenset({"a", "i"})
DEFAULT_BLOCKLIST = Path(__file__).resolve().parent / "blocklist.txt"  # source and licence in its header
_WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")
_ELONGATION = re.compile(r"([^\W\d_])\1\1", re.IGNORECASE)


def elongated(text: str) -> bool:
    """A letter three times in a row: "soooo", "hmmm", "niceeee"."""
    return _ELONGATION.search(text) is not None


def shown(word: str) -> bool:
    """May the strip show this word at all (before what was typed is known)?"""
    return (_WORD.fullmatch(word) is not None and not elongated(word)
            and (len(word) > 1 or word.lower() in SINGLE_LETTER_WORDS))


def shown_for(word: str, prefix: str) -> bool:
    """May the strip show `word` when `prefix` was typed (`shown`, plus an elongation after
    an elongated prefix, and the very letter typed)?"""
    if shown(word) or word.lower() == prefix.lower():
        return True
    return elongated(prefix) and _WORD.fullmatch(word) is not None


def blocklist(choice: str) -> frozenset[str]:
    """The words of a blocklist, lower-cased: "default" (the shipped list), "none", or a file
    (one word a line, '#' starts a comment). Shared by `nextword serve` and `nextword evaluate`."""
    if choice == "none":
        return frozenset()
    path = DEFAULT_BLOCKLIST if choice == "default" else Path(choice).expanduser()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read the blocklist {path}: {getattr(e, 'strerror', None) or e}") from None
    return frozenset(word for word in (line.split("#", 1)[0].strip().lower() for line in lines) if word)


@dataclass(frozen=True)
class Candidate:
    """A word for the strip, before the protocol layer turns it into a response."""

    text: str
    token_id: int
    logprob: float            # the model's log-probability of the word
    completion: bool          # True: completes the partial word; False: a next word
    correction: bool = False  # True: completes what the partial word was probably meant to be


class Suggester:
    """The vocabulary's words in spelling order, for prefix ranges: the words the strip may
    show, every word (for a typed prefix that is an elongation already), and the single
    letters (shown when that letter is what was typed)."""

    def __init__(self, vocab: Vocab, blocked: frozenset[str] = frozenset()):
        self.vocab, self.blocked = vocab, blocked
        words = sorted((t.lower(), i) for i, t in enumerate(vocab.tokens) if is_word(t) and t.lower() not in blocked)
        self.all_keys, self.all_ids = [k for k, _ in words], np.array([i for _, i in words], dtype=np.int64)
        clean = [(k, i) for k, i in words if shown(vocab.tokens[i])]
        self.keys, self.ids = [k for k, _ in clean], np.array([i for _, i in clean], dtype=np.int64)
        self.letters = {k: i for k, i in words if len(k) == 1}
        self.showable = np.zeros(len(vocab), dtype=bool)  # by id: may the strip show it (typed prefix aside)?
        self.showable[self.ids] = True

    def candidates(self, prefix: str) -> np.ndarray:
        """Ids of the words that start with prefix (all words for '') that the strip may show
        for it; the prefix comes normalized, as split_typed and token_spans give it."""
        p = prefix.lower()
        keys, ids = (self.all_keys, self.all_ids) if elongated(p) else (self.keys, self.ids)
        lo = bisect.bisect_left(keys, p)
        hi = bisect.bisect_left(keys, p + _AFTER_ALL, lo)
        if p in self.letters and p not in SINGLE_LETTER_WORDS:  # the very letter typed
            return np.append(ids[lo:hi], self.letters[p])
        return ids[lo:hi]

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
