"""The default training recipe and the training room's one-line error (no torch here)."""
from __future__ import annotations

from dataclasses import dataclass

from model.engine.errors import UserError


@dataclass(frozen=True)
class Recipe:
    """The default training recipe, the shipped model's (8 M parameters): the one home of
    these numbers (flags, bench_train and `nextword data` read them here)."""
    vocab_size: int = 10000   # including the 4 special tokens
    embedding: int = 256      # tied with the output layer
    hidden: int = 1024
    layers: int = 1
    dropout: float = 0.4
    batch_size: int = 128
    lr: float = 2e-3
    schedule: str = "cosine"
    max_len: int = 128
    seed: int = 1


RECIPE = Recipe()


class TrainError(UserError):
    """A training request that cannot run as asked (bad flag, no CUDA, unusable directory)."""
