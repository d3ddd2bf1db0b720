"""The keyboard error model, the corrector and the noisy typist on examples worked by hand."""
import numpy as np
import pytest

from model.engine import typos
from model.engine.strip import StripBuilder
from model.engine.text import SPECIALS, UNK_ID, Vocab
from model.engine.typos import Corrector, cased_correction, edit_cost, neighbours
from model.evaluate.typist import Typing, Typist, mistype

QWERTY = neighbours("qwerty")
# ids are frequency ranks: "the" and "hello" common; after 100 filler words, "teh" is a rare
# slip of "the" and "Provo" a rare real word
FILLER = tuple("zq" + a + b for a in "bcdfghjklm" for b in "bcdfghjklm")
VOCAB = Vocab(SPECIALS + ("the", "hello", "help", "you", "your", "yes", "there", ".") + FILLER + ("teh", "Provo", "ok"))


def row(**probs) -> np.ndarray:
    """A distribution over VOCAB: the given words' probabilities, the rest spread thin."""
    p = np.full(len(VOCAB), 1e-4)
    for word, value in probs.items():
        p[UNK_ID if word == "unk" else VOCAB.id(word)] = value
    return np.log(p / p.sum()).astype(np.float32)


def test_neighbours_follow_the_layout():
    assert QWERTY["a"] == {"q", "w", "s", "z"}
    assert "z" in neighbours("qwertz")["t"] and "z" not in QWERTY["t"]  # QWERTZ has z where QWERTY has y
    assert "q" in neighbours("azerty")["z"] and "a" in neighbours("azerty")["z"]


def test_costs_of_each_kind_of_slip():
    assert edit_cost("you", "you", QWERTY) == 0
    assert edit_cost("ypu", "you", QWERTY) == typos.NEAR_KEY            # p is next to o
    assert edit_cost("yiu", "you", QWERTY) == typos.NEAR_KEY            # i is next to o
    assert edit_cost("ybu", "you", QWERTY) == typos.FAR_KEY             # b is far from o
    assert edit_cost("helo", "hello", QWERTY) == typos.MISSED
    assert edit_cost("helllo", "hello", QWERTY) == typos.EXTRA_NEAR     # a doubled letter
    assert edit_cost("teh", "the", QWERTY) == typos.SWAPPED
    assert edit_cost("jello", "hello", QWERTY) == typos.NEAR_KEY + typos.FIRST_LETTER
    assert edit_cost("hwlpo", "hello", QWERTY) > edit_cost("hwllo", "hello", QWERTY)  # two slips cost more than one


def test_typos_of_a_partial_word_find_the_intended_word_ranked_with_the_model():
    corrector = Corrector(VOCAB)
    strip = corrector.strip(row(you=0.3, your=0.2, yes=0.1), "how are ", "ypu", 3)
    assert [(c.text, c.correction) for c in strip] == [("you", True), ("your", True), ("yes", False)][:len(strip)]
    # an exact completion that is likely keeps its place ahead of corrections
    strip = corrector.strip(row(help=0.5, hello=0.01), "", "hel", 2)
    assert strip[0].text == "help" and not strip[0].correction


def test_autocorrect_only_unknown_words_and_only_when_likely():
    corrector = Corrector(VOCAB)
    assert corrector.autocorrect(row(you=0.5, unk=0.01), "ypu", False).replacement == "you"
    assert corrector.autocorrect(row(the=0.3, unk=0.01), "teh", False).replacement == "the"  # a known slip
    assert corrector.autocorrect(row(the=0.3), "Provo", False) is None           # a real word is never corrected
    assert corrector.autocorrect(row(you=0.5), "you", False) is None
    assert corrector.autocorrect(row(you=1e-6, unk=0.5), "ypu", False) is None   # unknown words are likely here


def test_casing_of_corrections():
    assert cased_correction("you", "Ypu", False) == "You"
    assert cased_correction("you", "YPU", False) == "YOU"
    assert cased_correction("you", "ypu", True) == "You"
    assert cased_correction("Provo", "provp", False) == "Provo"


def test_the_typist_makes_the_same_typos_for_the_same_seed():
    a = [mistype("something", 0.3, np.random.default_rng(7)) for _ in range(3)]
    b = [mistype("something", 0.3, np.random.default_rng(7)) for _ in range(3)]
    assert a == b and any(t != "something" for t in a)
    assert mistype("something", 0.0, np.random.default_rng(7)) == "something"
    assert "1," in mistype("a1,b", 1.0, np.random.default_rng(1))  # digits and punctuation are typed right


def test_the_typist_counts_keystrokes_and_words_left_wrong():
    # "you hello", 9 characters, typed with a slip in each first letter: "tou", "jello".
    # The model makes "the", "help", "there" likelier than either intended word.
    rows = np.stack([row(the=0.3, help=0.3, there=0.2, you=0.1), row(the=0.3, help=0.3, there=0.2, hello=0.1), row()])
    totals = {"plain": Typing(), "corrected": Typing()}
    Typist(StripBuilder(VOCAB), rate=0.0).type_message(totals, "you hello", rows, ["tou", "jello"])
    plain, corrected = totals["plain"], totals["corrected"]
    # plain: no strip ever holds the intended word: t o u, space, j e l l o = 9 keys, both words wrong
    assert (plain.keystrokes, plain.characters, plain.words, plain.wrong) == (9, 9, 2, 2)
    # corrected: after "to", "you" (y for t: near key + first letter) beats "the" (o too many, far):
    # accepted, 3 keys, space free; after "je", "hello" is offered: 3 keys. Nothing left wrong.
    assert (corrected.keystrokes, corrected.wrong) == (6, 0)
    assert plain.result()["words_left_wrong"] == 1.0 and corrected.result()["ksr_3"] == pytest.approx(1 - 6 / 9, abs=1e-4)


def test_autocorrect_on_the_separator_counts_in_words_left_wrong():
    # "you ok" typed "ypu ok" by a typist whose strip never helps: with corrections, the space
    # after "ypu" autocorrects it to "you"; "ok" is a known word and stays. 3 + 1 + 2 keys.
    typist = Typist(StripBuilder(VOCAB), rate=0.0)
    typist.strip = lambda *args: []
    rows = np.stack([row(you=0.05, unk=0.001), row(), row()])
    totals = {"plain": Typing(), "corrected": Typing()}
    typist.type_message(totals, "you ok", rows, ["ypu", "ok"])
    assert (totals["plain"].wrong, totals["corrected"].wrong) == (1, 0)
    assert totals["plain"].keystrokes == totals["corrected"].keystrokes == 6
