"""Training batches: messages of similar length padded together, each from a zero state.

Every message starts at <s> with a zero LSTM state, exactly as the service starts a
typing session, so training and serving see the same thing (no state carried across
messages). Messages are shuffled, then sorted by length within pools of 64 batches so
that padding stays small:

    inputs  (B, T):  <s> w1 w2 w3  <s> w1 pad pad   <- padded with 0 (ignored)
    targets (B, T):  w1  w2 w3 </s> w1 </s> -100 -100 <- -100 = no loss
"""
from __future__ import annotations

import numpy as np

IGNORE = -100
POOL = 64  # batches per length-sorting pool


def batch_indices(lengths: np.ndarray, batch_size: int, seed: int) -> list[np.ndarray]:
    """Message indices of each batch for one epoch (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    batches = []
    for start in range(0, len(order), batch_size * POOL):
        pool = order[start : start + batch_size * POOL]
        pool = pool[np.argsort(lengths[pool], kind="stable")]
        batches += [pool[i : i + batch_size] for i in range(0, len(pool), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def pad_batch(seqs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) int64 arrays of shape (B, T) from id sequences <s> .. </s>."""
    width = max(len(s) for s in seqs) - 1
    inputs = np.zeros((len(seqs), width), dtype=np.int64)
    targets = np.full((len(seqs), width), IGNORE, dtype=np.int64)
    for row, s in enumerate(seqs):
        inputs[row, : len(s) - 1] = s[:-1]
        targets[row, : len(s) - 1] = s[1:]
    return inputs, targets


def truncate(seqs: list[np.ndarray], max_len: int) -> list[np.ndarray]:
    """Cap very long messages (rare in chat) so one batch cannot blow up in width."""
    return [s[:max_len] if len(s) > max_len else s for s in seqs]
