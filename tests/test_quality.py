"""Keystroke savings and accuracy on small examples worked by hand (see model/evaluate/quality.py)."""
import math

import numpy as np
import pytest

from model.data import encode_message
from model.engine.strip import StripBuilder
from model.engine.text import SPECIALS, Vocab
from model.evaluate import quality
from model.evaluate.ngram import KneserNeyTrigram

VOCAB = Vocab(SPECIALS + ("the", "there", "hi", "them", "."))
P = {"the": 0.4, "there": 0.3, "hi": 0.15, "them": 0.05, ".": 0.04, "</s>": 0.04, "<unk>": 0.01, "<s>": 0.005, "<num>": 0.005}


def constant_scorer(seqs):
    """The same distribution at every position: ranking the > there > hi > them."""
    row = np.log(np.array([P[t] for t in VOCAB.tokens], dtype=np.float32))
    return [np.tile(row, (len(s) - 1, 1)) for s in seqs]


def test_keystroke_savings_worked_example():
    # "hi there", 8 characters.
    # 1 suggestion: "hi": '' shows [the] -> type h; 'h' shows [hi] -> accept (2 keys), space free.
    #   "there": '' [the] t, 't' [the] h, 'th' [the] e, 'the' [the] r, 'ther' [there] accept -> 5 keys. 7 keys.
    # 3 suggestions: '' shows [the, there, hi]: accept hi (1), space free, accept there (1): 2 keys.
    r = quality.evaluate(["hi there"], StripBuilder(VOCAB), constant_scorer)
    assert r["characters"] == 8
    assert r["ksr_1"] == pytest.approx(1 - 7 / 8)
    assert r["ksr_3"] == pytest.approx(1 - 2 / 8)
    assert r["ksr_5"] == pytest.approx(1 - 2 / 8)
    assert r["top1_accuracy"] == 0 and r["top3_accuracy"] == 1
    assert r["completion_top3_after_1"] == 1   # 'h' -> hi, 't' -> there
    assert r["completion_top3_after_2"] == 1   # only "there" is longer than 2 letters
    assert r["perplexity"] == pytest.approx(math.exp(-(math.log(.15) + math.log(.3) + math.log(.04)) / 3), rel=1e-4)


def test_out_of_vocabulary_words_and_punctuation_are_typed():
    # "hi zork." with 3 suggestions: hi accepted (1), space free, zork typed (4), '.' typed (1) = 6 of 8.
    r = quality.evaluate(["hi zork."], StripBuilder(VOCAB), constant_scorer)
    assert r["ksr_3"] == pytest.approx(1 - 6 / 8)
    assert r["words"] == 2 and r["top3_accuracy"] == 0.5


def test_no_savings_when_nothing_is_ever_suggested():
    r = quality.evaluate(["zork zork"], StripBuilder(VOCAB), constant_scorer)
    assert r["ksr_1"] == r["ksr_5"] == 0.0


def test_kneser_ney_distributions_sum_to_one_and_prefer_seen_continuations():
    vocab = Vocab.build(["the cat sat", "the cat ran", "a dog sat"], 20)
    seqs = [encode_message(m, vocab) for m in ["the cat sat", "the cat ran", "a dog sat"]]
    kn = KneserNeyTrigram(seqs, len(vocab))
    rows = kn.logprobs(encode_message("the cat sat", vocab))
    assert np.allclose(np.exp(rows).sum(axis=1), 1, atol=1e-5)
    after_the_cat = rows[2]
    assert after_the_cat[vocab.id("sat")] > after_the_cat[vocab.id("dog")]
    assert np.argmax(rows[1]) == vocab.id("cat")
