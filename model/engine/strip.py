"""The suggestion strip, in one home: what a keystroke gets, from the model's output.

`StripBuilder` takes the LSTM's next-token log-probabilities after the context, the typed
partial word, the keyboard layout and maybe the user's model, and returns the strip with
corrections and autocorrect, suppressed words left out. The server (service/server/predictor.py)
and `nextword evaluate` (model/evaluate/) call this same object, so the figures the
evaluation prints are what a user gets: main dictionary, corrections and personal words
included.

Every word of the strip has one probability, ranked together:
- a vocabulary word: the LSTM's;
- a word of the main dictionary outside the vocabulary: P(<unk>) times its share
  (model/engine/dictionary.py);
- with a user's model: the mixture of model/engine/personal.py over both;
- a correction: its probability less the cost of the typing error (model/engine/typos.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.engine.dictionary import Dictionary
from model.engine.personal import MIN_COUNT, Personalizer, UserModel
from model.engine.suggest import Candidate, Suggester, cased, starts_sentence
from model.engine.text import UNK_ID, Vocab
from model.engine.typos import DEFAULT_LAYOUT, Autocorrect, Corrector


@dataclass
class Strip:
    """What a keystroke gets: the suggestions, best first, and maybe an autocorrect."""
    candidates: list[Candidate]
    autocorrect: Autocorrect | None = None


class StripBuilder:
    """The strip for one vocabulary, its main dictionary (or none), a blocklist and the
    user model's threshold: everything that does not change from keystroke to keystroke."""

    def __init__(self, vocab: Vocab, dictionary: Dictionary | None = None, blocked: frozenset[str] = frozenset(),
                 min_count: int = MIN_COUNT, unigram: np.ndarray | None = None):
        self.vocab, self.dictionary, self.unigram = vocab, dictionary, unigram
        self.suggester = Suggester(vocab, blocked)
        self.corrector = Corrector(vocab, self.suggester, dictionary)
        self.personalizer = Personalizer(vocab, self.suggester, min_count, dictionary, unigram)

    @classmethod
    def open(cls, vocab: Vocab, dictionary_file: Path | None, blocked: frozenset[str] = frozenset(),
             min_count: int = MIN_COUNT, unigram_file: Path | None = None) -> "StripBuilder":
        """With the dictionary in that file (filtered by the same blocklist), or without one;
        with the training split's counts of the vocabulary (unigram.txt: the user's bias), or without."""
        dictionary = Dictionary.load(dictionary_file, vocab, blocked) if dictionary_file else None
        unigram = np.loadtxt(unigram_file, dtype=np.int64, ndmin=1) if unigram_file else None
        return cls(vocab, dictionary, blocked, min_count, unigram)

    def without_dictionary(self) -> "StripBuilder":
        """The same strip with the LSTM's vocabulary alone (for comparisons)."""
        return StripBuilder(self.vocab, None, self.suggester.blocked, self.personalizer.min_count, self.unigram)

    def candidates(self, logprobs: np.ndarray, context: str, partial: str, k: int, layout: str = DEFAULT_LAYOUT,
                   user: UserModel | None = None, corrections: bool = True) -> list[Candidate]:
        """The k suggestions for text typed as (context, partial word), best first."""
        if user is not None:
            exact = self.personalizer.strip(logprobs, user, context, partial, k)
        else:
            exact = self.exact(logprobs, context, partial, k)
        if not corrections:
            return exact
        hidden = user.suppressed if user is not None else frozenset()
        return self.corrector.strip(logprobs, context, partial, k, layout, exact, hidden)

    def exact(self, logprobs: np.ndarray, context: str, partial: str, k: int) -> list[Candidate]:
        """Words that start with what was typed: the vocabulary's and the dictionary's, ranked together."""
        strip = self.suggester.strip(logprobs, context, partial, k)
        if self.dictionary is None:
            return strip
        found = self.dictionary.top(partial.lower(), k)
        if not len(found):
            return strip
        unknown, capital = float(logprobs[UNK_ID]), starts_sentence(context)
        strip += [Candidate(cased(self.dictionary.forms[i], partial, capital), UNK_ID,
                            unknown + float(self.dictionary.logshare[i]), bool(partial)) for i in found.tolist()]
        strip.sort(key=lambda c: -c.logprob)
        return strip[:k]

    def looks_random(self, word: str) -> bool:
        """A word unknown to the vocabulary and the dictionary whose letters look random (never
        learned: model/engine/learnable.py); without a dictionary nothing is judged so."""
        return (self.dictionary is not None and word.lower() not in self.corrector.known
                and self.dictionary.looks_random(word))

    def may_autocorrect(self, word: str, user: UserModel | None = None) -> bool:
        """Whether a finished word is one autocorrect may replace (cheap: no model needed)."""
        return self.corrector.may_correct(word) and (user is None or not user.knows(word))

    def autocorrect(self, logprobs: np.ndarray, word: str, sentence_start: bool, layout: str = DEFAULT_LAYOUT,
                    user: UserModel | None = None) -> Autocorrect | None:
        """A correction for a word just finished by a separator, given the logprobs before it;
        never to a word the user suppressed."""
        if not self.may_autocorrect(word, user):
            return None
        fix = self.corrector.autocorrect(logprobs, word, sentence_start, layout)
        if fix is not None and user is not None and fix.replacement.lower() in user.suppressed:
            return None
        return fix
