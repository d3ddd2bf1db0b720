"""Training throughput: `nextword train` next to a bare PyTorch loop, in one run.

    python -m model.train.bench --steps 300

The bare loop trains the same model on the same batches (the first --steps batches of
epoch 1, padded the same way) prepared in memory beforehand, so it measures only the
model's forward, backward and optimiser step. `nextword train` runs as a user runs it (a
subprocess), and its own progress lines give its tokens/s. The ratio says how much data
preparation and bookkeeping cost; the goal is at least 85%. The bare loop runs before and
after, and both its figures are printed, so drift on a busy machine shows.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from model.data import encode_messages, load_corpus
from model.engine.text import Vocab
from model.train.batches import IGNORE, batch_indices, pad_batch, truncate
from model.train.lm import LSTMLM, LMConfig
from model.train.recipe import RECIPE


def bare_loop(batches: list[tuple[torch.Tensor, torch.Tensor]], cfg: LMConfig, warmup: int) -> float:
    """tokens/s of forward + backward + step over prepared batches (after `warmup` steps)."""
    torch.manual_seed(0)
    model = LSTMLM(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=RECIPE.lr)
    tokens, started = 0, None
    for i, (inputs, targets) in enumerate(batches):
        if i == warmup:
            tokens, started = 0, time.perf_counter()
        logits, _ = model(inputs)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        tokens += int((targets != IGNORE).sum())
    return tokens / (time.perf_counter() - started)


def pipeline(steps: int, log_every: int) -> list[float]:
    """tokens/s reported by `nextword train` itself, one figure per progress line."""
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run([sys.executable, "-m", "nextword", "train", "--out", f"{out}/run", "--max-steps", str(steps),
                               "--log-every", str(log_every), "--progress-seconds", "1e9", "--seed", str(RECIPE.seed)],
                              capture_output=True, text=True, check=True)
    return [float(r.replace(",", "")) for r in re.findall(r"([\d,]+) tokens/s", proc.stdout)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="training steps per measurement")
    parser.add_argument("--warmup", type=int, default=50, help="steps left out of each measurement")
    args = parser.parse_args()
    d = RECIPE
    corpus = load_corpus(None)
    vocab = Vocab.build(corpus.splits["train"], d.vocab_size)
    train = truncate(encode_messages(corpus.splits["train"], vocab), d.max_len)
    lengths = np.array([len(s) for s in train])
    chosen = batch_indices(lengths, d.batch_size, d.seed)[: args.steps]
    batches = [tuple(torch.from_numpy(a) for a in pad_batch([train[i] for i in rows])) for rows in chosen]
    cfg = LMConfig(len(vocab), d.embedding, d.hidden, d.layers, d.dropout)

    before = bare_loop(batches, cfg, args.warmup)
    rates = pipeline(args.steps, args.warmup)[1:]  # the first line includes start-up
    after = bare_loop(batches, cfg, args.warmup)
    ours, bare = float(np.mean(rates)), (before + after) / 2
    print(f"{torch.get_num_threads()} threads, batch {d.batch_size}, {args.steps} steps ({args.warmup} warm-up)")
    print(f"bare PyTorch loop, prepared batches:   {before:>9,.0f} tokens/s before, {after:,.0f} after")
    print(f"nextword train (data prep included):   {ours:>9,.0f} tokens/s")
    print(f"nextword train / bare loop:            {ours / bare:>9.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
