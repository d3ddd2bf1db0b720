"""A user's own model: counts of the words they sent and of word pairs, mixed with the LSTM.

Pure Python + NumPy (no torch): the service and `nextword evaluate --personal` share it,
so the figures the evaluation prints are what a user of the service gets.

What is kept (and all that is kept): *entries* with a count and the time last seen.
- a word as sent ("Anneke", "lol"): its count;
- a word with the one or two tokens before it, lower-cased, spaces between (tokens never
  hold one): "how are", "<s> how are" ("<s>" is the start of a message).
Never whole messages, never the order of more than three tokens.

The strip mixes the LSTM with the user's distributions for the next word w after the
contexts c1 (the last token) and c2 (the last two):
    P(w) = (1 - a1 - a2 - b - r) P_lstm(w) + a1 P_user(w | c1) + a2 P_user(w | c2)
           + b P_user(w) + r P_recent(w)
The weights grow with how much the user model knows (Witten-Bell-like): a context's trust
grows with the times it was followed by a word against the number of different words
that followed it; c2 takes its share first and c1 its share of what is left. b grows with
the words the user sent; r is a small fixed share for the user's last 64 words (the topic
of the moment). All four are then multiplied by the user's *scale*, learned from how well
the user's part predicted the user's own sent words (`Personalizer.evidence`, an online EM
step per sent message), against how well it does for the users the weights were tuned on:
a user whose history does not predict them drifts towards the plain model, one with a
strong style gets up to MAX_SCALE times the weights. P_lstm is tempered (p ** 0.7, renormalized): the LSTM is surer of itself
than it should be next to what a user is known to write; then biased by the user's own words
(`Personalizer.biased`): each word's P_lstm times (P_user(w) / P_corpus(w)) ** (BIAS_POWER times
the scale up to 1), the words renormalized to the mass they had, P_corpus from the training
split (unigram.txt). A word outside the LSTM's
vocabulary gets the LSTM's <unk> probability times its share of the user's words, so a
user's names and jargon become suggestible, with the user's casing; a word of the main
dictionary (model/engine/dictionary.py) gets its dictionary probability instead, and needs
no second send: it is a known word, not a typo or a secret.

Cost per keystroke is flat in the history size: candidates are the LSTM's top words, the
most frequent followers of each context, and the user's words in the typed prefix's range
when that range is small; each set is bounded. (Adding the user's most frequent and most
recent words as candidates changed nothing measurable, so they are not.)
"""
from __future__ import annotations

import bisect
import heapq
import itertools
import math
import weakref
from collections import Counter, deque
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from model.engine.dictionary import Dictionary
from model.engine.learnable import dropped_chunks, learnable_parts
from model.engine.suggest import Candidate, Suggester, cased, shown_for, starts_sentence
from model.engine.text import UNK_ID, Vocab, is_word, token_spans, tokenize

START = "<s>"  # the token before a message's first word
ORDER = 3      # a word and at most two tokens before it

# Mixture weights, tuned with scripts/tune-personal on valid-split users (docs/DESIGN.md).
CONTEXT_WEIGHT = (0.2, 0.4)  # most weight the followers of the last one / two tokens can get
CONTEXT_TRUST = 8.0          # a context followed this many times per different word gets half that
WORD_WEIGHT = 0.02           # most weight the user's word counts can get
WORD_TRUST = 1000.0          # words sent before the user's word counts get half that weight
RECENT_WEIGHT = 0.03         # weight of the user's last RECENT words sent (the topic of the moment)
RECENT = 64
TEMPERATURE = 0.7            # the LSTM's probabilities to this power (renormalized) before mixing: it
                             # is surer of itself than it should be next to what a user is known to write

# The user's scale (docs/DESIGN.md, "Personal suggestions"): kept as two entries of the user's own
# record, "<trust> <gained>" and "<trust> <given>" (a context no typed text yields), in hundredths
# of a word, so stores, export, pruning and forgetting treat them as they treat every entry.
TRUST = "<trust>"
GAINED, GIVEN = f"{TRUST} <gained>", f"{TRUST} <given>"
EVIDENCE_UNIT = 100       # entries hold whole counts: evidence in hundredths
EVIDENCE_PRIOR = 3.0      # a new user starts at scale 1 as if this much weight had been given (and earned at the reference)
REFERENCE_RATIO = 1.19    # what the user's part earns per weight given, at scale 1, for the valid split's users with
                          # history (median; quartiles 1.12-1.25: scripts/scale-reference), on whom the weights were
                          # tuned: a user earning that keeps the tuned weights (scale 1)
MAX_SCALE = 4.0           # the most a strong style multiplies the weights by
MAX_USER_WEIGHT = 0.9     # ... and the user's parts together never take more than this
EVIDENCE_WORDS = 16       # words of a sent message scored for evidence (the first): bounded cost per send
ACCEPTED_WEIGHT = 2.0     # a word accepted from the strip counts this many times in the evidence

BIAS_POWER = 0.3          # the LSTM's P(w) times (P_user(w) / P_corpus(w)) ** this (times the user's scale up to 1)
BIAS_PRIOR = 2000.0       # P_user(w) is smoothed towards P_corpus(w) as if this many words had been sent

MIN_COUNT = 2      # times a user sends a word outside the vocabulary before it is suggested (README: how it was chosen)
MAX_COUNT = 1_000_000  # a count saturates here (stores and models alike): no import or flood overflows it
FOLLOWERS = 32     # the most frequent followers of a context, candidates after it
RANGE_SCAN = 32    # a prefix matching at most this many of the user's words: all are candidates

_AFTER_ALL = "\U0010ffff"


def contexts_of(context: str) -> tuple[str, ...]:
    """The user-model contexts before the next word, lower-cased: (last token, last two).
    Reads the last two whitespace-delimited chunks only: flat cost per keystroke."""
    parts = context.rsplit(None, ORDER - 1)
    tokens = [t.lower() for chunk in parts[-(ORDER - 1):] for t in tokenize(chunk)]
    if len(parts) < ORDER:  # those chunks are all of the context: the message starts there
        tokens.insert(0, START)
    return tuple(" ".join(tokens[-n:]) for n in range(1, ORDER) if len(tokens) >= n)


def message_entries(message: str, looks_random: Callable[[str], bool] | None = None) -> dict[str, int]:
    """The entries a sent message adds, with their counts: of its learnable parts only
    (model/engine/learnable.py), so nothing that looks like a secret, nor any link across one;
    `looks_random` tells a made-up string from a word (model/engine/strip.py)."""
    found: dict[str, int] = {}
    for part, starts_message in learnable_parts(message, looks_random):
        before = [START] if starts_message else []
        for token in tokenize(part):
            if is_word(token):
                word = token.lower()
                for entry in (token, *(" ".join(before[-n:] + [word]) for n in range(1, min(len(before), ORDER - 1) + 1))):
                    found[entry] = found.get(entry, 0) + 1
            before.append(token.lower())
    return found


class UserModel:
    """One user's entries and the indexes the strip reads; changed only by add (the store prunes)."""

    def __init__(self, entries: dict[str, tuple[int, float]] | None = None, suppressed: set[str] | None = None):
        self.entries: dict[str, list] = {}             # entry -> [count, last seen (unix time)]
        self.suppressed: set[str] = set()              # lower-cased words the user asked never to see
        self.words: dict[str, int] = {}                # lower-cased word -> count
        self.forms: dict[str, dict[str, int]] = {}     # lower-cased word -> {form as sent: count}
        self.followers: dict[str, dict[str, int]] = {} # context -> {word: count}
        self.followed: dict[str, int] = {}             # context -> times a word followed it
        self.total = 0                                 # words sent
        self.keys: list[str] = []                      # the lower-cased words, sorted: prefix ranges
        self._top_followers: dict[str, list[str]] = {}
        self.recent: deque[str] = deque()              # the last RECENT words sent, oldest first
        self.recent_counts: Counter[str] = Counter()    # ... and how often each is among them
        for entry, (count, seen) in sorted((entries or {}).items(), key=lambda e: e[1][1]):
            self.add(entry, count, seen)
        self.suppressed.update(suppressed or ())

    def __len__(self) -> int:
        return len(self.entries)

    def learn(self, message: str, now: float, looks_random: Callable[[str], bool] | None = None) -> dict[str, int]:
        """Count a sent message; returns the entries it added (for the store)."""
        found = message_entries(message, looks_random)
        for entry, count in found.items():
            self.add(entry, count, now)
        return found

    def add(self, entry: str, count: int, seen: float) -> None:
        if count <= 0:
            return
        held = self.entries.setdefault(entry, [0, seen])
        held[1] = max(held[1], seen)
        count = min(count, MAX_COUNT - held[0])  # saturates as the stores do
        if count <= 0:
            return
        held[0] += count
        if entry.startswith(TRUST):
            return  # evidence for the scale, read by scale()
        if " " in entry:
            context, word = entry.rsplit(" ", 1)
            followers = self.followers.setdefault(context, {})
            followers[word] = followers.get(word, 0) + count
            self.followed[context] = self.followed.get(context, 0) + count
            self._top_followers.pop(context, None)
            return
        word = entry.lower()
        self.suppressed.discard(word)  # sent again: suggested again (the store lifts it too)
        if word not in self.words:
            bisect.insort(self.keys, word)
            self.words[word] = 0
        self.words[word] += count
        forms = self.forms.setdefault(word, {})
        forms[entry] = forms.get(entry, 0) + count
        self.total += count
        self._note_recent(word, count)

    def _note_recent(self, word: str, count: int) -> None:
        for _ in range(min(count, RECENT)):
            self.recent.append(word)
            self.recent_counts[word] += 1
            if len(self.recent) > RECENT:
                gone = self.recent.popleft()
                self.recent_counts[gone] -= 1
                if not self.recent_counts[gone]:
                    del self.recent_counts[gone]

    def knows(self, word: str) -> bool:
        return word.lower() in self.words

    def form(self, word: str) -> str:
        """The user's casing of a word: the form they sent most often."""
        forms = self.forms[word]
        return max(forms, key=lambda f: (forms[f], f == word))

    def earned(self) -> float:
        """What the user's part earned on their own sent words per weight it was given
        (REFERENCE_RATIO for a new user)."""
        gained, given = (self.entries.get(e, (0,))[0] / EVIDENCE_UNIT for e in (GAINED, GIVEN))
        return (EVIDENCE_PRIOR * REFERENCE_RATIO + gained) / (EVIDENCE_PRIOR + given)

    def scale(self) -> float:
        """What the user's weights are multiplied by: what their part earned against what it
        earns for the users the weights were tuned on (1 for a new user)."""
        return min(MAX_SCALE, self.earned() / REFERENCE_RATIO)

    def weights(self, contexts: tuple[str, ...]) -> tuple[list[float], float, float]:
        """The user's weights after the contexts, multiplied by their scale."""
        return self.scaled(*self.tuned_weights(contexts))

    def tuned_weights(self, contexts: tuple[str, ...]) -> tuple[list[float], float, float]:
        """(weight of each context's followers, of the word counts, of the recent words) as
        tuned, before the user's scale. The longer context goes first: the shorter one gets
        its share of what the longer leaves."""
        trusts = []
        for context, most in zip(contexts, CONTEXT_WEIGHT):
            followed = self.followed.get(context, 0)
            trust = CONTEXT_TRUST * len(self.followers.get(context, ()))
            trusts.append(most * followed / (followed + trust) if followed else 0.0)
        weights, left = [0.0] * len(trusts), 1.0
        for n in reversed(range(len(trusts))):
            weights[n], left = left * trusts[n], left * (1 - trusts[n])
        return weights, WORD_WEIGHT * self.total / (self.total + WORD_TRUST), RECENT_WEIGHT if self.recent else 0.0

    def scaled(self, weights: list[float], word: float, recent: float) -> tuple[list[float], float, float]:
        """Tuned weights times the user's scale, all together at most MAX_USER_WEIGHT."""
        total = sum(weights) + word + recent
        if not total:
            return weights, word, recent
        scale = min(self.scale(), MAX_USER_WEIGHT / total)
        return [w * scale for w in weights], word * scale, recent * scale

    def candidates(self, contexts: tuple[str, ...], prefix: str) -> set[str]:
        """The user's words worth scoring after the contexts for a lower-cased prefix (bounded)."""
        found = set()
        for context in contexts:
            found.update(w for w in self.top_followers(context) if w.startswith(prefix))
        lo = bisect.bisect_left(self.keys, prefix)
        hi = bisect.bisect_left(self.keys, prefix + _AFTER_ALL, lo)
        if hi - lo <= RANGE_SCAN:
            found.update(self.keys[lo:hi])
        return found

    def top_followers(self, context: str) -> list[str]:
        top = self._top_followers.get(context)
        if top is None:
            followers = self.followers.get(context, {})
            top = list(followers) if len(followers) <= FOLLOWERS else heapq.nlargest(FOLLOWERS, followers, key=followers.get)
            self._top_followers[context] = top
        return top


class Mixture:
    """The user's part of P(w) after one context: the weights and the distributions they weigh."""

    def __init__(self, user: UserModel, contexts: tuple[str, ...]):
        tuned = user.tuned_weights(contexts)
        self.given = sum(tuned[0]) + tuned[1] + tuned[2]  # the user's weight before their scale
        context_weights, word_weight, recent_weight = user.scaled(*tuned)
        self.lstm_weight = 1.0 - sum(context_weights) - word_weight - recent_weight
        self.followers = [(weight / user.followed[c], user.followers[c])
                          for c, weight in zip(contexts, context_weights) if weight]
        self.words, self.word_share = user.words, word_weight / max(user.total, 1)
        self.recent, self.recent_share = user.recent_counts, recent_weight / RECENT

    def user_part(self, word: str) -> float:
        """The user's part of P(word), weights included (word lower-cased)."""
        p = self.word_share * self.words.get(word, 0) + self.recent_share * self.recent.get(word, 0)
        for share, counts in self.followers:
            p += share * counts.get(word, 0)
        return p


def learned_words(message: str, looks_random: Callable[[str], bool] | None = None) -> tuple[str, list[tuple[int, int, str]]]:
    """The normalized message and its first EVIDENCE_WORDS words that are learned (secrets
    left out): (token index, start, lower-cased word) each."""
    chunks, dropped = dropped_chunks(message, looks_random)
    text = " ".join(chunks)
    ends = list(itertools.accumulate(len(c) + 1 for c in chunks))  # each chunk's end (+1) in text
    found = []
    for index, (token, start, _, _) in enumerate(token_spans(text)):
        if is_word(token) and not dropped[bisect.bisect_right(ends, start)]:
            found.append((index, start, token.lower()))
            if len(found) == EVIDENCE_WORDS:
                break
    return text, found


@dataclass(frozen=True, eq=False)
class Bias:
    """A user's log-bias over the words, in the row's units: for the words they sent (ids,
    sent), and for every other word (unsent). Held while the user's model is; key: what it
    was computed at (the user's total words, the power)."""
    key: tuple[int, float]
    ids: np.ndarray
    sent: np.ndarray
    unsent: float


def same_row(held: np.ndarray | None, row: np.ndarray) -> bool:
    """Is row the one held (the same array, or a view of the same memory: the evaluation takes
    a row of its scored matrix anew at each keystroke)? The held one keeps its memory alive."""
    return held is row or (held is not None and held.shape == row.shape
                           and held.__array_interface__["data"][0] == row.__array_interface__["data"][0])


def tempered_exp(logprobs: np.ndarray) -> tuple[np.ndarray, float]:
    """exp(TEMPERATURE * logprob) of a row, up to a factor (its largest is 1), and the log of
    the row's tempered normalizer: p ** TEMPERATURE / exp(norm) sums to 1."""
    top = float(logprobs.max())
    p = np.exp(TEMPERATURE * (logprobs - top))
    return p, TEMPERATURE * top + math.log(float(p.sum()))


@dataclass(frozen=True)
class Scored:
    word: str        # lower-cased
    token_id: int    # UNK_ID for a word outside the vocabulary
    probability: float
    form: str        # its usual written form (the user's, the vocabulary's or the dictionary's)


class Personalizer:
    """The strip from the LSTM's next-token log-probabilities and a user model.

    What the user model adds follows the strip's rules (model/engine/suggest.py: `shown_for`),
    with two differences: a word of the blocklist the user sent may be shown to them, and a
    word outside the vocabulary is shown only once the user sent it `min_count` times. A
    word the user suppressed (forgot alone) is never shown to them, not even as the LSTM's.
    """

    def __init__(self, vocab: Vocab, suggester: Suggester | None = None, min_count: int = MIN_COUNT,
                 dictionary: Dictionary | None = None, unigram: np.ndarray | None = None):
        self.vocab, self.min_count, self.dictionary = vocab, min_count, dictionary
        self.suggester = suggester or Suggester(vocab)
        self._norm: tuple[np.ndarray | None, float] = (None, 0.0)  # the last row and its tempered log-normalizer
        self._biased: tuple = (None, None, None)  # the last row, the bias it was given, and the row biased
        self._biases: weakref.WeakKeyDictionary[UserModel, Bias] = weakref.WeakKeyDictionary()
        self.corpus = None  # P_corpus(w): a word's share of the training split's words (0 for other tokens)
        if unigram is not None:
            self.word_ids = np.array([i for i, t in enumerate(vocab.tokens) if is_word(t) and unigram[i] > 0])
            self.corpus = np.zeros(len(vocab))
            self.corpus[self.word_ids] = unigram[self.word_ids] / unigram[self.word_ids].sum()
        self.ids = {t.lower(): i for i, t in enumerate(vocab.tokens) if is_word(t)}  # a user's word -> its id

    def tempered(self, logprobs: np.ndarray):
        """p -> P_lstm(w) tempered: p ** TEMPERATURE, renormalized over the vocabulary. The
        normalizer is kept for the last row: keystrokes within a word share their row."""
        row, norm = self._norm
        if not same_row(row, logprobs):
            norm = tempered_exp(logprobs)[1]
            self._norm = (logprobs, norm)
        return lambda logprob: math.exp(TEMPERATURE * logprob - norm)

    def top(self, logprobs: np.ndarray, user: UserModel, contexts: tuple[str, ...], prefix: str, k: int) -> list[Scored]:
        """The k most likely words starting with prefix (normalized) after the contexts, best first."""
        prefix = prefix.lower()
        logprobs = self.biased(logprobs, user)
        mixture = Mixture(user, contexts)
        lstm_weight, user_part, words = mixture.lstm_weight, mixture.user_part, user.words
        lstm_p = self.tempered(logprobs)
        scored: dict[str, tuple[float, int, str]] = {}
        hidden = user.suppressed
        ids, lps = self.suggester.top(logprobs, prefix, k + len(hidden))
        for i, lp in zip(ids.tolist(), lps.tolist()):
            word = self.vocab.tokens[i].lower()
            if word not in hidden:
                scored[word] = (lstm_weight * lstm_p(lp) + user_part(word), i, self.vocab.tokens[i])
        dictionary = self.dictionary
        if dictionary is not None:
            for i in dictionary.top(prefix, k + len(hidden)).tolist():
                word = dictionary.keys[i]
                if word not in hidden:
                    lstm = lstm_p(float(logprobs[UNK_ID]) + float(dictionary.logshare[i]))
                    form = user.form(word) if word in words else dictionary.forms[i]  # the user's casing first
                    scored[word] = (lstm_weight * lstm + user_part(word), UNK_ID, form)
        known = self.ids
        for word in user.candidates(contexts, prefix):
            if word in scored or word in hidden or not shown_for(word, prefix):
                continue
            i = known.get(word, UNK_ID)
            lstm = self._lstm(lstm_p, logprobs, word, i, user)
            if lstm is None:
                continue
            scored[word] = (lstm_weight * lstm + user_part(word), i, user.form(word) if word in words else word)
        best = heapq.nlargest(k, scored.items(), key=lambda item: item[1][0])
        return [Scored(word, i, p, form) for word, (p, i, form) in best]

    def bias(self, user: UserModel) -> Bias:
        """The user's log-bias over the vocabulary's words: power * log(P_user(w) / P_corpus(w)),
        P_user smoothed towards P_corpus by BIAS_PRIOR words; the power is BIAS_POWER times the
        user's scale up to 1, so a history that does not predict its user (many people's
        messages: their counts differ from the corpus by chance) biases little."""
        power = BIAS_POWER * min(user.scale(), 1.0)
        held = self._biases.get(user)
        if held is not None and held.key == (user.total, power):
            return held
        words = user.words
        ids = np.fromiter(map(self.ids.get, words, itertools.repeat(UNK_ID)), np.int64, len(words))
        counts = np.fromiter(words.values(), np.float64, len(words))
        found = self.corpus[ids] > 0  # a word of the vocabulary the corpus has (UNK_ID's share is 0)
        ids, counts = ids[found], counts[found]
        corpus, rest = self.corpus[ids], math.log(counts.sum() + BIAS_PRIOR)
        # in the row's units (tempering multiplies them back): a word never sent gets the same, log BIAS_PRIOR - rest
        seen = power * (np.log(counts + BIAS_PRIOR * corpus) - np.log(corpus) - rest) / TEMPERATURE
        bias = Bias((user.total, power), ids, seen.astype(np.float32), power * (math.log(BIAS_PRIOR) - rest) / TEMPERATURE)
        self._biases[user] = bias
        return bias

    def biased(self, logprobs: np.ndarray, user: UserModel) -> np.ndarray:
        """The LSTM's row with the user's bias (the row as is without a corpus or a sent word):
        tempered P(w) times exp(bias(w)), the words' share of the mass kept, as a row that
        tempered() and the Suggester read as they read the LSTM's."""
        if self.corpus is None or not user.total:
            return logprobs
        bias = self.bias(user)
        row, held, out = self._biased
        if held is bias and same_row(row, logprobs):
            return out
        p, norm = tempered_exp(logprobs)
        words, sent = float(p[self.word_ids].sum()), p[bias.ids]
        lifted = math.exp(TEMPERATURE * bias.unsent) * (words - float(sent.sum())) + float(sent.dot(np.exp(TEMPERATURE * bias.sent)))
        out = logprobs.copy()
        out[self.word_ids] += bias.unsent + math.log(words / lifted) / TEMPERATURE
        out[bias.ids] += bias.sent - bias.unsent
        self._biased = (logprobs, bias, out)
        # the mass is where it was, so the row's tempered normalizer is the LSTM's: tempered() need not sum it again
        self._norm = (out, norm)
        return out

    def _lstm(self, lstm_p, logprobs: np.ndarray, word: str, i: int, user: UserModel) -> float | None:
        """The LSTM's tempered P(word) as the strip mixes it (i: its vocabulary id or UNK_ID):
        the vocabulary's, the dictionary's share of <unk>, or the user's share of it for a word
        sent min_count times; None for a word no strip offers."""
        if i != UNK_ID:
            return lstm_p(float(logprobs[i]))
        if self.dictionary is not None and (d := self.dictionary.find(word)) >= 0:
            return lstm_p(float(logprobs[UNK_ID]) + float(self.dictionary.logshare[d]))
        count = user.words.get(word, 0)
        return lstm_p(float(logprobs[UNK_ID])) * count / max(user.total, 1) if count >= self.min_count else None

    def evidence(self, user: UserModel, sent: Iterable[tuple[np.ndarray, str, str, bool]]) -> dict[str, int]:
        """The entries that move the user's scale after a sent message, from the model as it was
        before it: for each sent word (the LSTM's row before it, the text before it, the word
        lower-cased, whether it was accepted from the strip: then it counts ACCEPTED_WEIGHT times), the share of the mixture's P(word) the user's part gave (gained) and the
        weight the part had before scaling (given). gained / given is the EM update of the scale;
        summed over the user's history it settles where the user's part earns what it gets."""
        gained = given = 0.0
        for logprobs, context, word, accepted in sent:
            if word in user.suppressed:
                continue
            logprobs = self.biased(logprobs, user)
            mixture = Mixture(user, contexts_of(context))
            user_p = mixture.user_part(word)
            lstm = self._lstm(self.tempered(logprobs), logprobs, word, self.ids.get(word, UNK_ID), user) or 0.0
            p = mixture.lstm_weight * lstm + user_p
            if p > 0:  # a word neither part offers tells nothing of the mixture
                weight = ACCEPTED_WEIGHT if accepted else 1.0
                gained += weight * user_p / p
                given += weight * mixture.given
        held = max(user.entries.get(e, (0,))[0] for e in (GAINED, GIVEN))
        if not given or held + given * EVIDENCE_UNIT > MAX_COUNT:
            return {}
        return {GAINED: round(gained * EVIDENCE_UNIT), GIVEN: round(given * EVIDENCE_UNIT)}

    def strip(self, logprobs: np.ndarray, user: UserModel, context: str, partial: str, k: int) -> list[Candidate]:
        """Suggester.strip with the user's words mixed in (same casing rules)."""
        capital = starts_sentence(context)
        return [Candidate(cased(s.form, partial, capital), s.token_id, math.log(s.probability), bool(partial))
                for s in self.top(logprobs, user, contexts_of(context), partial, k) if s.probability > 0]
