"""`nextword data`: load the corpus, apply the split, print what is there."""
from __future__ import annotations

from model.data import SPLITS, CorpusError, load_corpus
from model.engine.text import SPECIALS, UNK_ID, Vocab, tokenize
from model.train.recipe import RECIPE


def add_arguments(p) -> None:
    p.add_argument("--corpus", nargs="+", metavar="FILE", help="plain-text files, one message per line (default: the chitchat-dataset package)")
    p.add_argument("--vocab-size", type=int, default=RECIPE.vocab_size, help="vocabulary size (specials included) for the coverage figures")


def main(args) -> int:
    if args.vocab_size <= len(SPECIALS):
        raise CorpusError(f"--vocab-size must be greater than {len(SPECIALS)} (the special tokens), got {args.vocab_size}")
    corpus = load_corpus(args.corpus)
    vocab = Vocab.build(corpus.splits["train"], args.vocab_size)
    print(f"corpus: {corpus.source} (train fingerprint {corpus.fingerprint()[:12]})")
    print(f"{'split':<6} {'messages':>10} {'tokens':>11} {'in vocab':>9}")
    for split in SPLITS:
        ids = [i for m in corpus.splits[split] for i in vocab.encode(tokenize(m))]
        coverage = 1 - ids.count(UNK_ID) / max(len(ids), 1)
        print(f"{split:<6} {len(corpus.splits[split]):>10,} {len(ids):>11,} {coverage:>9.2%}")
    print(f"vocabulary: {len(vocab):,} tokens (built from the train split)")
    return 0
