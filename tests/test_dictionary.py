"""The main dictionary (model/engine/dictionary.py) and the strip that ranks it with the LSTM
(model/engine/strip.py), on the shipped model: rare words complete, names keep their capitals,
slips inside dictionary words are corrected, and nothing unclean comes in with them."""
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, SHIPPED_MODEL
from model.engine.contract import DICTIONARY, ModelError
from model.engine.dictionary import Dictionary, read_entries
from model.engine.runtime import Runtime
from model.engine.strip import StripBuilder
from model.engine.suggest import blocklist, shown, starts_sentence
from model.engine.text import BOS_ID, SPECIALS, UNK_ID, Vocab, split_normalized, split_typed, tokenize

RUNTIME = Runtime(SHIPPED_MODEL, "cpu")
STRIPS = StripBuilder.open(RUNTIME.vocab, RUNTIME.dictionary_file, blocklist("default"))


def row(context: str) -> np.ndarray:
    ids = [BOS_ID, *RUNTIME.vocab.encode(tokenize(context))]
    h, c = RUNTIME.zero_state(1)
    return RUNTIME.run(np.array([ids], np.int64), h, c).logprobs[0]


def strip(text: str, strips: StripBuilder = STRIPS) -> list[str]:
    context, partial = split_typed(text)
    return [c.text for c in strips.candidates(row(context), context, partial, 3)]


def test_a_rare_word_completes_after_a_few_letters():
    assert "indefatigable" in strip("he is indefat")
    assert "indefatigable" not in strip("he is indefat", STRIPS.without_dictionary())  # the LSTM alone cannot
    assert "perpendicular" in strip("the line is perpendic")


def test_names_keep_their_capitals():
    assert strip("I flew to Uta")[0] == "Utah"
    assert strip("we drove to hambu")[0] == "Hamburg"  # typed in lower case: the name's own capital wins
    assert "bill" in [w.lower() for w in strip("pay the bil")]


def test_a_slip_inside_a_dictionary_word_is_corrected():
    context, partial = split_typed("he is indefatog")
    found = STRIPS.candidates(row(context), context, partial, 3)
    assert found[0].text == "indefatigable" and found[0].correction and found[0].token_id == UNK_ID


def test_dictionary_words_are_known_to_autocorrect():
    """A finished dictionary word is never "corrected" into a vocabulary word (it was meant)."""
    for text in ("he was indefatigable ", "a perpendicular ", "in Hamburg "):
        context = split_typed(text)[0]
        before, word = split_normalized(context[:-1])
        assert not STRIPS.may_autocorrect(word)
        assert STRIPS.autocorrect(row(before), word, starts_sentence(before)) is None
    assert STRIPS.may_autocorrect("accomodate")  # a frequent misspelling is no dictionary word (wordfreq has it)


def test_the_dictionary_splits_the_unknown_words_probability():
    d = STRIPS.dictionary
    assert math.isclose(float(np.exp(d.logshare.astype(np.float64)).sum()), 1.0, rel_tol=1e-4)
    assert len(d) > 100_000 and d.size > len(d)  # the vocabulary's words are known, not candidates
    assert d.knows("the") and d.find("the") < 0 and d.knows("Indefatigable")
    assert d.keys == sorted(d.keys)
    top = d.top("indef", 3).tolist()
    assert [d.keys[i] for i in top][0].startswith("indef") and d.logshare[top[0]] >= d.logshare[top[-1]]


def test_every_dictionary_word_obeys_the_strip_rules_and_the_blocklist():
    blocked = blocklist("default")
    d = STRIPS.dictionary
    assert all(shown(form) for form in d.forms)
    assert not [k for k in d.keys if k in blocked]
    small = Dictionary([("zorkle", 3.0), ("the", 7.0), ("soooo", 3.0), ("x", 3.0), ("mid2", 3.0), ("ban", 3.0)],
                       Vocab(SPECIALS + ("the",)), frozenset({"ban"}))
    assert small.keys == ["zorkle"] and small.knows("the")


def test_the_manifest_declares_the_dictionary(tmp_path):
    model = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL, model)
    (model / DICTIONARY).unlink()
    with pytest.raises(ModelError, match="no dictionary.txt"):
        Runtime(model, "cpu")
    with open(model / DICTIONARY, "w") as f:
        f.write("zorkle\t3.00\n")
    with pytest.raises(ModelError, match="1 words, the manifest says"):
        Runtime(model, "cpu")


def test_nextword_dictionary_rebuilds_the_shipped_file(tmp_path):
    """`nextword dictionary` from wordfreq and SCOWL gives the very file the model ships."""
    model = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL, model)
    (model / DICTIONARY).unlink()
    proc = subprocess.run([sys.executable, "-m", "nextword", "dictionary", "--model-dir", str(model)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (model / DICTIONARY).read_bytes() == (SHIPPED_MODEL / DICTIONARY).read_bytes()
    assert len(read_entries(model / DICTIONARY)) == 132_908
    assert "## Main dictionary" in (model / "MODEL_CARD.md").read_text()
