"""The corpus split of docs/DESIGN.md, on known ids and on the real corpus."""
from model.data import clean, load_corpus, load_text_files, split_of


def test_split_rule_on_known_ids():
    assert split_of("a07edb12-6b91-4138-b11e-02421888d699") == "test"
    assert split_of("76725d26-b5ca-4548-8c97-7c641725ad2f") == "test"
    assert split_of("ebe2fe21-3835-48c5-b744-12d00ca67843") == "valid"
    assert split_of("1bc9f40b-6b8d-4522-b058-25478637a7ea") == "valid"
    assert split_of("58a21226-302d-4d83-a7f8-8e6ade072c84") == "train"


def test_messages_are_one_clean_line():
    assert clean("  hello\nthere\r\nyou  ") == "hello there you"


def test_chitchat_split_counts():
    corpus = load_corpus(None)
    counts = {k: len(v) for k, v in corpus.splits.items()}
    assert counts == {"train": 231360, "valid": 11716, "test": 15036}
    assert sum(counts.values()) <= 258145  # empty messages dropped


def test_plain_text_corpus_skips_empty_lines(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text("one\n\n  \ntwo\nthree\n")
    corpus = load_text_files([str(f)])
    assert sorted(m for s in corpus.splits.values() for m in s) == ["one", "three", "two"]
