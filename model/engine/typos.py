"""Typo-tolerant suggestions and autocorrect: a keyboard error model over the vocabulary.

Pure Python + NumPy (no torch): the service and `nextword evaluate --typos` share it.

- Candidate generation: symspellpy's symmetric-delete index over every *prefix* of every
  vocabulary word, so a mistyped partial word finds the prefixes it is one or two edits
  away from (Damerau: substitution, extra letter, missed letter, swapped neighbours), and
  each prefix expands to its words by the Suggester's binary search. The main dictionary
  (model/engine/dictionary.py; 100k+ words, too many for a delete index of every prefix in
  memory) is searched the other way: each spelling one edit from what was typed is looked
  up by binary search, and a prefix found brings its most frequent words.
- The error model prices those edits (`edit_cost`, in nats): a nearby key on the layout
  costs less than a far one, one edit less than two, an edit of the first letter more.
- Ranking combines the two: score = log P(word | context) - cost(typed -> word's prefix).
  Exact completions cost nothing, so they keep their place when they are likely.
- Autocorrect on a separator: only for a word that is not a known word (of the vocabulary
  or the dictionary; a vocabulary word that is a common slip, like "teh", does not count as
  known), and only when a close known word is more likely than the typed spelling standing
  as an unknown word: log P(word) - cost > log P(<unk>) - UNKNOWN_SPELLING. A dictionary
  word's log P is log P(<unk>) + its log share (model/engine/dictionary.py).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from cachetools import LRUCache
from symspellpy import SymSpell, Verbosity

from model.engine.dictionary import Dictionary
from model.engine.layouts import DEFAULT_LAYOUT, LAYOUTS
from model.engine.suggest import Candidate, Suggester, elongated, starts_sentence
from model.engine.text import UNK_ID, Vocab, is_word

# Costs of typing errors, in nats (-log probability). The four marked "tuned" were chosen
# with `nextword evaluate --typos` on 2,000 valid messages (rates 0 and 0.05): clean typing
# loses at most 0.1 point of KSR@3 and spoils under 0.3% of words, typos are fixed most.
NEAR_KEY = 3.0        # a neighbouring key instead of the intended one
FAR_KEY = 6.5         # any other key
MISSED = 4.0          # a letter left out
EXTRA_NEAR = 3.5      # a letter too many: the same letter again, or a neighbour of one beside it
EXTRA_FAR = 6.0       # any other letter too many
SWAPPED = 3.5         # two neighbouring letters swapped
FIRST_LETTER = 1.0       # tuned: added to an error in the first letter, rarely got wrong
UNKNOWN_SPELLING = 7.5   # tuned: -log P(this spelling | an unknown word) for autocorrect
STRIP_PENALTY = 2.0      # tuned: nats a correction in the strip must beat an exact completion by
TWO_EDITS_FROM = 5       # tuned: letters from which a finished word may be two edits from its correction
SLIP_RATIO = 20          # a known word is a slip when its letters swapped are this much more frequent
CACHE = 8192             # partial words whose typo candidates are kept
DICTIONARY_PER_PREFIX = 3  # a dictionary prefix one edit away brings its most frequent words, this many


def max_edits(typed: str) -> int:
    """Edits tolerated: none for one letter (anything is one edit away), one for up to five
    letters, two for longer words, where two slips are likely and still unambiguous."""
    return 0 if len(typed) < 2 else 1 if len(typed) <= 5 else 2


def one_edit(typed: str, letters: str, at_end: bool = True) -> set[str]:
    """Every spelling one edit from `typed` (a letter replaced, left out, added, or two
    neighbours swapped); without letters added at the end when `at_end` is False (for a
    partial word, those are its exact completions)."""
    splits = [(typed[:i], typed[i:]) for i in range(len(typed) + 1)]
    found = {a + b[1:] for a, b in splits if b}
    found.update(a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1)
    found.update(a + c + b[1:] for a, b in splits if b for c in letters)
    found.update(a + c + b for a, b in (splits if at_end else splits[:-1]) for c in letters)
    found.discard(typed)
    return found


@functools.lru_cache(maxsize=None)
def letters_of(layout: str) -> str:
    return "".join(LAYOUTS[layout])


@functools.lru_cache(maxsize=None)
def neighbours(layout: str) -> dict[str, frozenset[str]]:
    """Keys that touch each key: same row left/right, the rows above and below."""
    rows = LAYOUTS[layout]
    where = {ch: (r, c + 0.5 * r) for r, row in enumerate(rows) for c, ch in enumerate(row)}
    return {a: frozenset(b for b, (rb, xb) in where.items() if b != a and abs(rb - ra) <= 1 and abs(xb - xa) <= 1.0)
            for a, (ra, xa) in where.items()}


def edit_cost(typed: str, intended: str, near: dict[str, frozenset[str]]) -> float:
    """Cheapest way, in nats, that typing `intended` came out as `typed` (weighted
    optimal-string-alignment distance; both lower-case)."""
    n, m = len(typed), len(intended)
    d = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        d[i][0] = d[i - 1][0] + _extra(typed, i - 1, intended, 0, near)
    for j in range(1, m + 1):
        d[0][j] = d[0][j - 1] + MISSED + (FIRST_LETTER if j == 1 else 0)
    for i in range(1, n + 1):
        t = typed[i - 1]
        for j in range(1, m + 1):
            w = intended[j - 1]
            first = FIRST_LETTER if j == 1 or i == 1 else 0.0
            best = d[i - 1][j - 1] + (0.0 if t == w else (NEAR_KEY if t in near.get(w, ()) else FAR_KEY) + first)
            best = min(best, d[i - 1][j] + _extra(typed, i - 1, intended, j, near) + (FIRST_LETTER if i == 1 else 0),
                       d[i][j - 1] + MISSED + first)
            if i > 1 and j > 1 and t == intended[j - 2] and typed[i - 2] == w and t != w:
                best = min(best, d[i - 2][j - 2] + SWAPPED + (FIRST_LETTER if j == 2 else 0))
            d[i][j] = best
    return d[n][m]


def _extra(typed: str, i: int, intended: str, j: int, near) -> float:
    """Cost of typed[i] being a letter too many, next to intended[j - 1] / intended[j]."""
    ch = typed[i]
    beside = {intended[k] for k in (j - 1, j) if 0 <= k < len(intended)}
    if i > 0:
        beside.add(typed[i - 1])
    return EXTRA_NEAR if any(ch == b or ch in near.get(b, ()) for b in beside) else EXTRA_FAR


@dataclass(frozen=True)
class Autocorrect:
    """Replace `original` (the word right before the last `separator_length` characters)
    with `replacement`; `confidence` is the correction's share of the two hypotheses."""
    original: str
    replacement: str
    confidence: float
    separator_length: int = 1


class Corrector:
    """The strip with corrections, and autocorrect, for one vocabulary and maybe a main dictionary."""

    def __init__(self, vocab: Vocab, suggester: Suggester | None = None, dictionary: Dictionary | None = None):
        self.vocab, self.dictionary = vocab, dictionary
        self.suggester = suggester or Suggester(vocab)
        self.known = {t.lower(): i for i, t in enumerate(vocab.tokens) if is_word(t)}
        self.slips = {w for w, i in self.known.items() if slip_of(w, self.known, i)}
        self.index = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
        for word in self.known:
            for end in range(1, len(word) + 1):
                self.index.create_dictionary_entry(word[:end], 1)
        self._cache: LRUCache = LRUCache(CACHE)

    def typo_candidates(self, typed: str, layout: str = DEFAULT_LAYOUT) -> tuple[np.ndarray, np.ndarray]:
        """(word ids, costs) of words whose prefix is a likely mistyping of `typed`; exact
        completions excluded. Cached: it does not depend on the context."""
        return self._cached(("prefix", layout, typed.lower()), self._close_prefixes)

    def dictionary_candidates(self, typed: str, layout: str = DEFAULT_LAYOUT) -> tuple[np.ndarray, np.ndarray]:
        """(dictionary indexes, costs) of dictionary words whose prefix is one edit from `typed`."""
        if self.dictionary is None:
            return _NONE
        return self._cached(("dictionary prefix", layout, typed.lower()), self._dictionary_prefixes)

    def _cached(self, key: tuple[str, str, str], find) -> tuple[np.ndarray, np.ndarray]:
        """An LRU in front of the candidate searches: typing repeats the same partial words."""
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = find(key[2], key[1])
        return hit

    def _dictionary_prefixes(self, typed: str, layout: str) -> tuple[np.ndarray, np.ndarray]:
        if not max_edits(typed):
            return _NONE
        best: dict[int, float] = {}
        near, dictionary = neighbours(layout), self.dictionary
        for spelling in one_edit(typed, letters_of(layout), at_end=False):
            if not dictionary.has_prefix(spelling):
                continue
            cost = edit_cost(typed, spelling, near)
            for i in dictionary.top(spelling, DICTIONARY_PER_PREFIX).tolist():
                if not dictionary.keys[i].startswith(typed) and cost < best.get(i, math.inf):
                    best[i] = cost
        return np.fromiter(best, np.int64, len(best)), np.fromiter(best.values(), np.float32, len(best))

    def _dictionary_words(self, word: str, layout: str) -> tuple[np.ndarray, np.ndarray]:
        """(dictionary indexes, costs) of dictionary words one edit from a finished word."""
        found = [(i, edit_cost(word, spelling, neighbours(layout))) for spelling in one_edit(word, letters_of(layout))
                 if (i := self.dictionary.find(spelling)) >= 0]
        return np.array([i for i, _ in found], np.int64), np.array([c for _, c in found], np.float32)

    def _close_words(self, word: str, layout: str) -> tuple[np.ndarray, np.ndarray]:
        """(ids, costs) of known words (not slips) within reach of a finished word."""
        near, found = neighbours(layout), []
        for item in self.index.lookup(word, Verbosity.ALL, max_edit_distance=1 if len(word) < TWO_EDITS_FROM else 2):
            i = self.known.get(item.term)
            if i is not None and item.term not in self.slips and item.distance and self.suggester.showable[i]:
                found.append((i, edit_cost(word, item.term, near)))
        return np.array([i for i, _ in found], np.int64), np.array([c for _, c in found], np.float32)

    def _close_prefixes(self, typed: str, layout: str) -> tuple[np.ndarray, np.ndarray]:
        edits, near = max_edits(typed), neighbours(layout)
        if not edits:
            return _NONE
        exact = set(self.suggester.candidates(typed).tolist())
        showable = self.suggester.showable if not elongated(typed) else None  # "sooo" may be corrected to "soooo"
        best: dict[int, float] = {}
        for item in self.index.lookup(typed, Verbosity.ALL, max_edit_distance=edits):
            if item.distance == 0:
                continue
            cost = edit_cost(typed, item.term, near)
            for i in self.suggester.candidates(item.term).tolist():
                if i not in exact and (showable is None or showable[i]) and cost < best.get(i, math.inf):
                    best[i] = cost
        ids = np.fromiter(best, np.int64, len(best))
        return ids, np.fromiter(best.values(), np.float32, len(best))

    def strip(self, logprobs: np.ndarray, context: str, partial: str, k: int, layout: str = DEFAULT_LAYOUT,
              exact: list[Candidate] | None = None, hidden: frozenset[str] | set[str] = frozenset()) -> list[Candidate]:
        """The strip: exact completions (or next words) and corrections ranked together;
        `exact` when the exact part was ranked elsewhere (model/engine/strip.py), and no
        correction to a `hidden` word (lower-cased: the user's suppressed words)."""
        if exact is None:
            exact = self.suggester.strip(logprobs, context, partial, k)
        ids, costs = self.typo_candidates(partial, layout)
        extra, extra_costs = self.dictionary_candidates(partial, layout)
        if hidden:
            ids, costs = _without(ids, costs, [self.vocab.tokens[i].lower() in hidden for i in ids.tolist()])
            extra, extra_costs = _without(extra, extra_costs, [self.dictionary.keys[i] in hidden for i in extra.tolist()])
        if not len(ids) and not len(extra):
            return exact
        unknown = float(logprobs[UNK_ID])
        scores = np.concatenate([np.array([c.logprob for c in exact], np.float32), logprobs[ids] - costs - STRIP_PENALTY,
                                 unknown + self.dictionary.logshare[extra] - extra_costs - STRIP_PENALTY if len(extra)
                                 else np.empty(0, np.float32)])
        order = np.argpartition(-scores, k)[:k] if len(scores) > k else np.arange(len(scores))
        order = order[np.argsort(-scores[order], kind="stable")]
        capital, n = starts_sentence(context), len(exact)
        strip = []
        for j in order.tolist():
            if j < n:
                strip.append(exact[j])
            elif j < n + len(ids):
                i = int(ids[j - n])
                strip.append(self._correction(self.vocab.tokens[i], i, float(logprobs[i]), partial, capital))
            else:
                i = int(extra[j - n - len(ids)])
                logprob = unknown + float(self.dictionary.logshare[i])
                strip.append(self._correction(self.dictionary.forms[i], UNK_ID, logprob, partial, capital))
        return strip

    @staticmethod
    def _correction(form: str, i: int, logprob: float, partial: str, capital: bool) -> Candidate:
        return Candidate(cased_correction(form, partial, capital), i, logprob, bool(partial), correction=True)

    def may_correct(self, word: str) -> bool:
        """Whether a finished word is one autocorrect may replace (cheap: no model needed): not
        a known word (of the vocabulary or the dictionary), nor one of the blocklist (typed in
        full, it was meant)."""
        low = word.lower()
        if len(low) < 2 or not is_word(word) or low in self.suggester.blocked:
            return False
        if low in self.known:
            return low in self.slips
        return self.dictionary is None or not self.dictionary.knows(low)

    def autocorrect(self, logprobs: np.ndarray, word: str, sentence_start: bool,
                    layout: str = DEFAULT_LAYOUT) -> Autocorrect | None:
        """A correction for `word`, just finished by a separator, given the model's
        logprobs before it; None for a known word or when no close word is likely enough."""
        if not self.may_correct(word):
            return None
        low = word.lower()
        ids, costs = self._cached(("word", layout, low), self._close_words)
        forms, scores = [self.vocab.tokens[i] for i in ids.tolist()], logprobs[ids] - costs
        unknown = float(logprobs[UNK_ID])
        if self.dictionary is not None:
            extra, extra_costs = self._cached(("dictionary word", layout, low), self._dictionary_words)
            forms += [self.dictionary.forms[i] for i in extra.tolist()]
            scores = np.concatenate([scores, unknown + self.dictionary.logshare[extra] - extra_costs])
        if not len(forms):
            return None
        best = int(np.argmax(scores))
        best_score = float(scores[best])
        if best_score < unknown - UNKNOWN_SPELLING:
            return None
        confidence = 1 / (1 + math.exp(unknown - UNKNOWN_SPELLING - best_score))
        return Autocorrect(word, cased_correction(forms[best], word, sentence_start), round(confidence, 4))


_NONE = (np.empty(0, np.int64), np.empty(0, np.float32))


def _without(ids: np.ndarray, costs: np.ndarray, dropped: list[bool]) -> tuple[np.ndarray, np.ndarray]:
    keep = ~np.array(dropped, dtype=bool) if dropped else np.ones(0, dtype=bool)
    return ids[keep], costs[keep]


def slip_of(word: str, known: dict[str, int], rank: int) -> bool:
    """A vocabulary word that is a common slip rather than a word of its own ("teh", "becuase"):
    swapping two neighbouring letters gives a word far more frequent (ids are frequency ranks).
    Two-letter words are left alone: "em" and "ew" are chat words, not slips of "me" and "we"."""
    if len(word) < 3:
        return False
    for j in range(len(word) - 1):
        swapped = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
        if swapped != word and known.get(swapped, rank) * SLIP_RATIO < rank:
            return True
    return False


def cased_correction(word: str, typed: str, sentence_start: bool) -> str:
    """Keyboard casing of a correction: the typed word's capitals carry over by position
    ("Ypu" -> "You", "YPU" -> "YOU"), a word's own capitals stay ("provo" -> "Provo")."""
    letters = [c for c in typed if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return word.upper()
    if (typed[:1].isupper() or sentence_start) and word[:1].islower():
        return word[:1].upper() + word[1:]
    return word
