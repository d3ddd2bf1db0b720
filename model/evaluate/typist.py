"""A noisy typist: `nextword evaluate --typos RATE` types messages with seeded typing
errors, once with plain completion and once with corrections, and counts what each left.

The error model of the typist (fixed, so runs compare): each letter of a word is, with
probability RATE, mistyped in one of four ways, in the proportions touch-typing studies
report as most to least common: a neighbouring key instead (40%), left out (20%),
doubled (20%), swapped with the next letter (20%; a last letter is replaced instead).
Punctuation, digits and spaces are typed right. The same seed gives the same typos.

How the typist types a word (the keystrokes are counted as model/evaluate/quality.py counts them):
before each character it looks at the strip of 3 for what it has typed so far; if the
intended word is there (as a completion or, with corrections, as a correction) it takes
it for one keystroke and the space after it is free; otherwise it types the next
character of its (possibly mistyped) word. It never notices a typo itself. On the
separator after a word, with corrections, autocorrect may replace the word, as a phone
does on space. A word is left wrong when what stands in the end differs from the
intended word (case aside): missed typos plus correct words wrongly corrected.

The model sees the intended text as context (a word left wrong is read as typed right
for what follows), the same in both modes, so they differ only by the strip and autocorrect.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from model.data import encode_messages
from model.engine.savings import ACCEPT, Gaps, savings
from model.engine.strip import StripBuilder
from model.engine.suggest import starts_sentence
from model.engine.text import normalize, token_spans
from model.engine.typos import DEFAULT_LAYOUT, neighbours

STRIP = 3
MIX = (("near", 0.4), ("drop", 0.2), ("double", 0.2), ("swap", 0.2))


def mistype(word: str, rate: float, rng: np.random.Generator, layout: str = DEFAULT_LAYOUT) -> str:
    """The word as a noisy typist types it (see the module doc for the error model)."""
    near = neighbours(layout)
    out, i = [], 0
    kinds, weights = zip(*MIX)
    while i < len(word):
        ch = word[i]
        if not ch.isalpha() or rng.random() >= rate:
            out.append(ch)
            i += 1
            continue
        kind = kinds[rng.choice(len(kinds), p=weights)]
        if kind == "swap" and i + 1 < len(word) and word[i + 1].isalpha():
            out += [word[i + 1], ch]
            i += 2
            continue
        if kind in ("near", "swap"):
            keys = sorted(near.get(ch.lower(), ())) or [ch]
            key = keys[rng.integers(len(keys))]
            out.append(key.upper() if ch.isupper() else key)
        elif kind == "double":
            out += [ch, ch]
        i += 1  # "drop": nothing typed
    return "".join(out)


@dataclass
class Typing:
    """Totals of one mode over all messages."""
    keystrokes: int = 0
    characters: int = 0
    words: int = 0
    wrong: int = 0
    examples: list = field(default_factory=list)

    def result(self) -> dict:
        return {"ksr_3": round(savings(self.keystrokes, self.characters), 4),
                "words_left_wrong": round(self.wrong / max(self.words, 1), 4),
                "keystrokes": self.keystrokes, "characters": self.characters, "words": self.words, "wrong": self.wrong}


class Typist:
    """Types with the strip a server gives (model/engine/strip.py: these strips, this layout)."""

    def __init__(self, strips: StripBuilder, rate: float, seed: int = 1, layout: str = DEFAULT_LAYOUT):
        self.strips, self.rate, self.seed, self.layout = strips, rate, seed, layout

    def strip(self, row: np.ndarray, context: str, partial: str, corrections: bool) -> list[str]:
        words = self.strips.candidates(row, context, partial, STRIP, self.layout, corrections=corrections)
        return [w.text.lower() for w in words]

    def enter_word(self, row: np.ndarray, context: str, word: str, typed: str, corrections: bool) -> tuple[int, str, bool]:
        """Type one word: (keystrokes, what stands in the end, accepted from the strip?)."""
        for n in range(len(typed) + 1):
            if n == len(typed) and n:  # all typed: the strip is not looked at again
                break
            if word.lower() in self.strip(row, context, typed[:n], corrections):
                return n + ACCEPT, word, True
        return len(typed), typed, False

    def mistype_all(self, message: str, rng: np.random.Generator) -> list[str]:
        """Each token of the message as the typist types it (only words get typos)."""
        return [mistype(tok, self.rate, rng, self.layout) if word else tok for tok, _, _, word in token_spans(normalize(message))]

    def type_message(self, totals: dict[str, Typing], message: str, rows: np.ndarray, typed: list[str]) -> None:
        """Type one message in both modes; `typed` holds its tokens as the typist types them."""
        text = normalize(message)
        spans = token_spans(text)
        for corrections, t in ((False, totals["plain"]), (True, totals["corrected"])):
            t.characters += len(text)
            gaps = Gaps()
            for i, (tok, start, end, word) in enumerate(spans):
                t.keystrokes += gaps.before(start)
                if not word:
                    t.keystrokes += end - start
                    gaps.entered(end, False)
                    continue
                keys, final, free_space = self.enter_word(rows[i], text[:start], tok, typed[i], corrections)
                gaps.entered(end, free_space)
                t.keystrokes += keys
                separator = end < len(text) and not text[end].isalnum()
                if corrections and not free_space and separator:
                    fix = self.strips.autocorrect(rows[i], final, starts_sentence(text[:start]), self.layout)
                    final = fix.replacement if fix else final
                t.words += 1
                if final.lower() != tok.lower():
                    t.wrong += 1
                    if len(t.examples) < 8:
                        t.examples.append((tok, typed[i], final))

    def run(self, messages: list[str], score, batch: int = 256) -> dict:
        totals = {"plain": Typing(), "corrected": Typing()}
        rng = np.random.default_rng(self.seed)
        for i in range(0, len(messages), batch):
            chunk = messages[i : i + batch]
            seqs = encode_messages(chunk, self.strips.vocab)
            for message, rows in zip(chunk, score(seqs)):
                self.type_message(totals, message, rows, self.mistype_all(message, rng))
        return {"rate": self.rate, "seed": self.seed, "layout": self.layout, "messages": len(messages),
                **{mode: t.result() for mode, t in totals.items()},
                "examples": {mode: t.examples for mode, t in totals.items()}}
