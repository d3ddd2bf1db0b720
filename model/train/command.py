"""`nextword train`: train the LSTM language model on a corpus split.

This module is the command: its flags, the default recipe and the checks of what the user
asked for. It needs no torch, so `nextword train --help` works in every environment; the
training itself (model/train/loop.py) imports torch when it runs.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from model.train.recipe import RECIPE, TrainError


def add_arguments(p) -> None:
    r = RECIPE
    p.add_argument("--corpus", nargs="+", metavar="FILE", help="plain-text files, one message per line (default: the chitchat-dataset package)")
    p.add_argument("--out", default="runs/default", help="run directory for checkpoints last.pt and best.pt (made if missing)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt (model, optimiser, epoch, position in the epoch)")
    p.add_argument("--force", action="store_true",
                   help="start over in an OUT that holds a run: its checkpoints (and the model exported beside them) go first")
    p.add_argument("--vocab-size", type=int, default=r.vocab_size, help="vocabulary size including the 4 special tokens")
    p.add_argument("--embedding", type=int, default=r.embedding, help="embedding size (tied with the output layer)")
    p.add_argument("--hidden", type=int, default=r.hidden, help="LSTM hidden size")
    p.add_argument("--layers", type=int, default=r.layers, help="LSTM layers")
    p.add_argument("--dropout", type=float, default=r.dropout, help="dropout on embeddings and LSTM outputs")
    p.add_argument("--batch-size", type=int, default=r.batch_size, help="messages per optimisation step, over all processes")
    p.add_argument("--lr", type=float, default=r.lr, help="Adam learning rate (see --schedule)")
    p.add_argument("--schedule", default=r.schedule, choices=["plateau", "cosine"],
                   help="plateau: keep --lr, halve it when validation does not improve; cosine: decay it to 5%% "
                        "over the run's budget (--epochs, or --max-minutes when that ends first)")
    p.add_argument("--epochs", type=int, default=20, help="maximum number of passes over the training split")
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: no limit)")
    p.add_argument("--max-minutes", type=float, default=0, help="stop after this much training time, with a checkpoint (0: no limit)")
    p.add_argument("--eval-every", type=int, default=0, help="validate and checkpoint every N steps (0: at the end of each epoch)")
    p.add_argument("--patience", type=int, default=3, help="stop after this many validations without a better perplexity")
    p.add_argument("--max-len", type=int, default=r.max_len, help="cap on tokens per message (longer ones are cut)")
    p.add_argument("--seed", type=int, default=r.seed, help="random seed: same seed, same corpus, same machine -> same model")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: CUDA when available, else CPU")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    p.add_argument("--progress-seconds", type=float, default=10.0,
                   help="print progress (step, loss, tokens/s, ETA) at least this often, in seconds")
    p.add_argument("--log-every", type=int, default=0, help="also print progress every N steps (0: by time only)")


def check(args) -> None:
    """Refuse what cannot work before any data is loaded."""
    if args.vocab_size <= 4:
        raise TrainError(f"--vocab-size must be greater than 4 (the special tokens), got {args.vocab_size}")
    at_least_one = ("embedding", "hidden", "layers", "batch_size", "epochs", "max_len")
    for name in at_least_one:
        if getattr(args, name) < 1:
            raise TrainError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.progress_seconds <= 0:
        raise TrainError(f"--progress-seconds must be positive, got {args.progress_seconds}")
    for name in ("max_steps", "max_minutes", "eval_every", "patience", "threads", "log_every"):
        if getattr(args, name) < 0:
            raise TrainError(f"--{name.replace('_', '-')} must not be negative, got {getattr(args, name)}")
    if not 0 <= args.dropout < 1:
        raise TrainError(f"--dropout must be in [0, 1), got {args.dropout}")
    if args.lr <= 0:
        raise TrainError(f"--lr must be positive, got {args.lr}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise TrainError(f"--out {out} exists and is not a directory")
    if args.resume and args.force:
        raise TrainError("--resume continues a run, --force starts it over: not both")
    if args.resume and not (out / "last.pt").is_file():
        raise TrainError(f"--resume: no checkpoint to resume from at {out / 'last.pt'}")
    held = [name for name in RUN_FILES if (out / name).exists()]
    if held and not (args.resume or args.force):
        raise TrainError(f"--out {out} holds a run already ({', '.join(held)}): --resume continues it, --force starts "
                         f"over (they go), or give another --out")


RUN_FILES = ("last.pt", "best.pt", "model")  # what a run directory holds: checkpoints, and export's default output


def start_over(out: Path) -> None:
    """--force: the old run's files go before the new one writes any."""
    for name in RUN_FILES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        print(f"--force: removed {path}", flush=True)


def main(args) -> int:
    check(args)
    if args.force:
        start_over(Path(args.out))
    from model.train.loop import train  # torch: only now, so that --help works without it

    return train(args)
