"""Quality figures for any next-token model, from its log-probability rows (pure NumPy).

A model is seen only through `rows`: for a message <s> t1 .. tn </s>, an (n + 1, V)
array whose row i is log P(t_{i+1} | <s> t1 .. ti). The suggestion strip comes from
model/engine/strip.py, the very object the service runs: main dictionary, corrections and
(model/evaluate/personal.py) the user's words included.

Keystroke savings (docs/DESIGN.md), keystrokes counted:
- every character (Unicode code point) of the message typed by hand costs 1: letters,
  spaces, punctuation, digits, emoji code points; shift/casing costs nothing;
- before each character of a word, the strip shows N suggestions for what was typed so
  far; if the word (matched case-insensitively) is among them, it is accepted for 1
  keystroke and the space right after it is free;
- KSR = 1 - keystrokes / characters, summed over all messages (micro-average).
Next-word accuracy counts every word of the text (a word the strip cannot offer is a miss);
completion accuracy after n letters counts words longer than n letters, top 3; words
outside the vocabulary completed: their share accepted from a strip of 3 before their
last letter.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from model.data import encode_messages
from model.engine.personal import UserModel
from model.engine.savings import ACCEPT, Gaps, savings
from model.engine.strip import StripBuilder
from model.engine.suggest import shown_for
from model.engine.text import UNK_ID, normalize, token_spans

KSR_SIZES = (1, 3, 5)
FIGURES = [  # (key, label, format) of each figure, in the order tables print them
    ("perplexity", "perplexity (lower is better)", "{:.2f}"),
    ("top1_accuracy", "next word, top-1 accuracy", "{:.2%}"),
    ("top3_accuracy", "next word, top-3 accuracy", "{:.2%}"),
    ("completion_top3_after_1", "completion top-3 after 1 letter", "{:.2%}"),
    ("completion_top3_after_2", "completion top-3 after 2 letters", "{:.2%}"),
    ("ksr_1", "keystroke savings, 1 suggestion", "{:.2%}"),
    ("ksr_3", "keystroke savings, 3 suggestions", "{:.2%}"),
    ("ksr_5", "keystroke savings, 5 suggestions", "{:.2%}"),
    ("oov_completed", "words outside the vocabulary completed", "{:.2%}"),
]
MAX_STRIP = max(KSR_SIZES)
Rank = Callable[[int, str], int]  # (token index, typed prefix) -> place in the strip, MAX_STRIP if not in it


@dataclass
class Tally:
    nll: float = 0.0
    tokens: int = 0
    words: int = 0
    top1: int = 0
    top3: int = 0
    completion: dict = field(default_factory=lambda: {1: [0, 0], 2: [0, 0]})  # n -> [hits, words]
    keystrokes: dict = field(default_factory=lambda: {n: 0 for n in KSR_SIZES})
    chars: int = 0
    strips: int = 0
    unclean_strips: int = 0   # strips showing a stray letter, an elongation or a non-word (suggest.shown_for)
    oov_words: int = 0        # words outside the LSTM's vocabulary
    oov_completed: int = 0    # ... accepted from a strip of 3 before their last letter

    def result(self) -> dict:
        return {
            "perplexity": round(math.exp(self.nll / max(self.tokens, 1)), 3),
            "top1_accuracy": round(self.top1 / max(self.words, 1), 4),
            "top3_accuracy": round(self.top3 / max(self.words, 1), 4),
            **{f"completion_top3_after_{n}": round(h / max(w, 1), 4) for n, (h, w) in self.completion.items()},
            **{f"ksr_{n}": round(savings(k, self.chars), 4) for n, k in self.keystrokes.items()},
            "oov_completed": round(self.oov_completed / max(self.oov_words, 1), 4),
            "oov_words": self.oov_words,
            "tokens": self.tokens,
            "words": self.words,
            "characters": self.chars,
            "strips": self.strips,
            "unclean_strips": self.unclean_strips,
        }


def strip_rank(strips: StripBuilder, row: np.ndarray, context: str, prefix: str, target: str,
               tally: Tally | None = None, user: UserModel | None = None) -> int:
    """Position of the (lower-cased) target word in the strip of MAX_STRIP words for what was
    typed, or MAX_STRIP; with a tally, the strip is also checked against what a strip may show."""
    words = [c.text for c in strips.candidates(row, context, prefix, MAX_STRIP, user=user)]
    if tally is not None:
        tally.strips += 1
        tally.unclean_strips += not all(shown_for(w, prefix) for w in words)
    for place, word in enumerate(words):
        if word.lower() == target:
            return place
    return MAX_STRIP


def strip_ranker(strips: StripBuilder, rows: np.ndarray, message: str, tally: Tally | None = None,
                 user: UserModel | None = None) -> Rank:
    """rank(i, prefix): where the message's i-th token stands in the strip (with the user's model if given)."""
    text = normalize(message)
    spans = token_spans(text)
    return lambda i, prefix: strip_rank(strips, rows[i], text[: spans[i][1]], prefix, spans[i][0].lower(), tally, user)


def word_keystrokes(rank: Callable[[str], int], word: str) -> dict[int, tuple[int, bool]]:
    """For each strip size N: (keystrokes to enter the word, accepted from the strip?)."""
    result: dict[int, tuple[int, bool]] = {}
    for typed in range(len(word)):
        position = rank(word[:typed])
        for n in KSR_SIZES:
            if n not in result and position < n:
                result[n] = (typed + ACCEPT, True)
        if len(result) == len(KSR_SIZES):
            break
    return {n: result.get(n, (len(word), False)) for n in KSR_SIZES}


STRIP = 3  # the strip a typist takes words from (a phone's: three)


def tally_message(t: Tally, message: str, rows: np.ndarray, ids: np.ndarray, rank: Rank) -> set[int]:
    """Count one message; rank(i, prefix) places its i-th token in the strip for a prefix.
    Returns the tokens a typist with a strip of STRIP took from it."""
    text = normalize(message)
    t.nll -= float(rows[np.arange(len(ids) - 1), ids[1:]].sum())
    t.tokens += len(ids) - 1
    t.chars += len(text)
    gaps = {n: Gaps() for n in KSR_SIZES}  # what was entered so far, per strip size
    accepted = set()
    for i, (tok, start, end, word) in enumerate(token_spans(text)):
        for n in KSR_SIZES:
            t.keystrokes[n] += gaps[n].before(start)
        if not word:
            for n in KSR_SIZES:
                t.keystrokes[n] += end - start
                gaps[n].entered(end, False)
            continue
        t.words += 1
        first = rank(i, "")
        t.top1 += first < 1
        t.top3 += first < 3
        for n, tally in t.completion.items():
            if len(tok) > n:
                tally[0] += rank(i, tok[:n]) < 3
                tally[1] += 1
        for n, (keys, taken) in word_keystrokes(lambda prefix: rank(i, prefix), tok).items():
            t.keystrokes[n] += keys
            gaps[n].entered(end, taken)
        if gaps[STRIP].free_space:
            accepted.add(i)
        if ids[i + 1] == UNK_ID:
            t.oov_words += 1
            t.oov_completed += gaps[STRIP].free_space
    return accepted


def evaluate(messages: list[str], strips: StripBuilder, score, batch: int = 256) -> dict:
    """Figures over the messages; score(list of id arrays) -> list of row arrays; the strip
    is the one a server with these strips (dictionary, blocklist) gives."""
    t = Tally()
    for i in range(0, len(messages), batch):
        chunk = messages[i : i + batch]
        seqs = encode_messages(chunk, strips.vocab)
        for message, ids, rows in zip(chunk, seqs, score(seqs)):
            tally_message(t, message, rows, ids, strip_ranker(strips, rows, message, t))
    return t.result()
