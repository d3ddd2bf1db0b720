"""`nextword unigram`: each vocabulary token's count in the training split (unigram.txt).

The personal strip reads it as P_corpus(w), what the LSTM learned a word's frequency to be,
against which a user's own word frequencies bias the LSTM (model/engine/personal.py). The
counts must be of the data the model was trained on: the corpus's training split is checked
against the manifest's fingerprint. `nextword export` writes the same file.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from model.data import Corpus, load_corpus
from model.engine.contract import MANIFEST, SHIPPED_MODEL, UNIGRAM, VOCAB
from model.engine.errors import UserError
from model.engine.text import Vocab


def counts(corpus: Corpus, vocab: Vocab) -> np.ndarray:
    """How often each token of the vocabulary occurs in the corpus's training split."""
    found = np.zeros(len(vocab), dtype=np.int64)
    for message in corpus.splits["train"]:
        np.add.at(found, vocab.encode_text(message), 1)
    return found


def write(model_dir: Path, corpus: Corpus, vocab: Vocab) -> dict:
    """unigram.txt into a model directory; returns the manifest's "unigram" block."""
    found = counts(corpus, vocab)
    (model_dir / UNIGRAM).write_text("".join(f"{n}\n" for n in found.tolist()), encoding="utf-8")
    return {"file": UNIGRAM, "tokens": int(found.sum()), "corpus_fingerprint": corpus.fingerprint()}


def add_arguments(p) -> None:
    p.add_argument("--model-dir", required=True, help="the model directory to give its training split's counts (its manifest is updated)")
    p.add_argument("--corpus", nargs="+", metavar="FILE", help="the corpus the model was trained on (default: chitchat-dataset)")
    p.add_argument("--replace-shipped-model", action="store_true", help="allow MODEL_DIR to be model/pretrained (maintainers only)")


def main(args) -> int:
    model_dir = Path(args.model_dir)
    if model_dir.resolve() == SHIPPED_MODEL.resolve() and not args.replace_shipped_model:
        raise UserError(f"{model_dir} is the shipped model; pass --replace-shipped-model to write into it")
    try:  # read as `nextword dictionary` reads it: the file this writes may be missing or wrong
        meta = json.loads((model_dir / MANIFEST).read_text())
        vocab = Vocab.load(model_dir / VOCAB)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read the model directory {model_dir}: {e}") from None
    corpus = load_corpus(args.corpus)
    trained_on = meta.get("corpus", {}).get("fingerprint")
    if corpus.fingerprint() != trained_on:
        raise UserError(f"the training split of {corpus.source} is not the one {model_dir} was trained on "
                        f"(fingerprint {corpus.fingerprint()[:12]}, the manifest says {str(trained_on)[:12]})")
    meta["unigram"] = write(model_dir, corpus, vocab)
    (model_dir / MANIFEST).write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {model_dir / UNIGRAM}: {meta['unigram']['tokens']:,} training tokens counted")
    return 0
