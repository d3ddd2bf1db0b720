"""Corpus loading, the train/valid/test split of docs/DESIGN.md, and encoding to id arrays.

Pure Python + NumPy: `nextword data` and the evaluation of the n-gram baseline run
without torch.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.engine.errors import UserError
from model.engine.text import BOS_ID, EOS_ID, Vocab

SPLITS = ("train", "valid", "test")


class CorpusError(UserError):
    """A user mistake about the corpus: reported as one line, no traceback."""


def split_of(conversation_id: str) -> str:
    """docs/DESIGN.md split: sha1(id) % 20 == 0 -> test, == 1 -> valid, else train."""
    b = int(hashlib.sha1(conversation_id.encode()).hexdigest(), 16) % 20
    return "test" if b == 0 else "valid" if b == 1 else "train"


def clean(message: str) -> str:
    """One message is one line: stripped, inner newlines as spaces."""
    return " ".join(message.splitlines()).strip()


@dataclass
class Corpus:
    """Messages of each split, in the source's order; `source` says where they came from."""

    source: str
    splits: dict[str, list[str]] = field(default_factory=lambda: {s: [] for s in SPLITS})

    def fingerprint(self) -> str:
        """sha1 over the training messages: identifies the data a model was trained on."""
        h = hashlib.sha1()
        for m in self.splits["train"]:
            h.update(m.encode("utf-8", "surrogatepass") + b"\n")
        return h.hexdigest()

    def add(self, key: str, message: str) -> None:
        message = clean(message)
        if message:
            self.splits[split_of(key)].append(message)


def chitchat_messages():
    """Every message of the chitchat-dataset package: (conversation id, sender, timestamp, text)."""
    try:
        import chitchat_dataset
    except ImportError as e:
        raise CorpusError("the default corpus needs the package chitchat-dataset: pip install -e '.[data]' "
                          "(or pass --corpus FILE)") from e
    for conv_id, conv in chitchat_dataset.Dataset().items():
        for turn in conv["messages"]:
            for msg in turn:
                yield conv_id, msg["sender"], msg["timestamp"], msg["text"]


def load_chitchat() -> Corpus:
    """The default corpus: the chitchat-dataset package, split by conversation id."""
    corpus = Corpus("chitchat-dataset")
    for conv_id, _, _, text in chitchat_messages():
        corpus.add(conv_id, text)
    return corpus


def load_text_files(paths: list[str]) -> Corpus:
    """Plain-text corpus, one message per line; a line is split by its file name and
    line number hashed like a conversation id, so the split is stable."""
    corpus = Corpus(",".join(Path(p).name for p in paths))
    for p in paths:
        path = Path(p)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            raise CorpusError(f"corpus file not found: {p}") from None
        except (IsADirectoryError, PermissionError, OSError) as e:
            raise CorpusError(f"cannot read corpus file {p}: {e.strerror or e}") from None
        for n, line in enumerate(text.splitlines()):
            corpus.add(f"{path.name}:{n}", line)
    return corpus


def load_corpus(paths: list[str] | None) -> Corpus:
    corpus = load_text_files(paths) if paths else load_chitchat()
    if not corpus.splits["train"]:
        raise CorpusError(f"corpus {corpus.source} has no training messages (is it empty?)")
    return corpus


def encode_message(message: str, vocab: Vocab) -> np.ndarray:
    """A message as int32 ids <s> w1 .. wn </s>: the model reads ids[:-1], predicts ids[1:]."""
    return np.array([BOS_ID, *vocab.encode_text(message), EOS_ID], dtype=np.int32)


def encode_messages(messages: list[str], vocab: Vocab) -> list[np.ndarray]:
    return [encode_message(m, vocab) for m in messages]
