"""Tokenizer and vocabulary: properties (hypothesis) and the cases docs/DESIGN.md names."""
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from model.engine.text import (
    NUM_ID,
    SPECIALS,
    UNK_ID,
    Vocab,
    is_word,
    normalize,
    split_typed,
    tokenize,
)


@settings(max_examples=300)
@given(st.text())
def test_tokens_cover_every_visible_character(text):
    tokens = tokenize(text)
    assert "".join(tokens) == "".join(normalize(text).split())
    assert all(t and not any(c.isspace() for c in t) for t in tokens)


@settings(max_examples=300)
@given(st.text())
def test_split_typed_never_raises_and_splits_at_the_partial_word(text):
    context, partial = split_typed(text)
    assert context + partial == normalize(text)
    # a partial word is a letter, then letters, digits or apostrophes ("don'" is on its way to "don't")
    assert partial == "" or re.fullmatch(r"[^\W\d_][^\W_]*(?:'[^\W_]*)*", partial)
    if not text or text[-1].isspace():
        assert partial == ""


def test_contractions_are_one_word():
    assert tokenize("I'm sure you're right, don't worry") == ["I'm", "sure", "you're", "right", ",", "don't", "worry"]
    assert tokenize("it\u2019s") == ["it's"]  # curly apostrophe, as phones type it


def test_punctuation_numbers_and_emoji_are_tokens():
    assert tokenize("wait... 3.5 km!!") == ["wait", ".", ".", ".", "3.5", "km", "!", "!"]
    assert tokenize("ok 👍🏽 👨\u200d👩\u200d👧 yes") == ["ok", "👍🏽", "👨\u200d👩\u200d👧", "yes"]


def test_split_typed_next_word_vs_partial():
    assert split_typed("how are yo") == ("how are ", "yo")
    assert split_typed("how are you ") == ("how are you ", "")
    assert split_typed("hello,") == ("hello,", "")
    assert split_typed("I don\u2019") == ("I ", "don'")
    assert split_typed("") == ("", "")


def test_vocab_is_case_insensitive_and_keeps_usual_casing():
    messages = ["i think Provo is nice", "we went to Provo", "i'm in provo too", "Hello there", "hello friend 42"]
    vocab = Vocab.build(messages, 100)
    assert vocab.tokens[: len(SPECIALS)] == SPECIALS
    assert "Provo" in vocab.tokens and "provo" not in vocab.tokens  # usual written form, once
    assert "I" in vocab.tokens and "I'm" in vocab.tokens             # "i" is "I"
    assert "hello" in vocab.tokens                                   # sentence-initial capital is not its usual form
    assert vocab.id("PROVO") == vocab.id("provo") == vocab.tokens.index("Provo")
    assert vocab.id("zebra") == UNK_ID and vocab.id("1999") == NUM_ID
    assert not is_word("42") and not is_word(",") and not is_word("<unk>") and is_word("I'm")


def test_vocab_round_trips_through_vocab_txt(tmp_path):
    vocab = Vocab.build(["a b c", "b c", "c"], 10)
    vocab.save(tmp_path / "vocab.txt")
    assert Vocab.load(tmp_path / "vocab.txt") == vocab
    assert vocab.tokens[4:] == ("c", "b", "a")  # by frequency
