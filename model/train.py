"""`nextword train`: train the LSTM language model on a corpus split.

Runs on CUDA when present (bf16 autocast) and on the CPU otherwise. Started by
`torchrun --nproc_per_node N`, it trains with DistributedDataParallel (nccl on GPU,
gloo on CPU): every rank takes its share of the rows of each global batch, so N
processes take the same optimisation steps as one process with the same --batch-size.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from model import checkpoint
from model.card import describe_hardware
from model.batches import IGNORE, batch_indices, pad_batch, truncate
from model.data import CorpusError, encode_messages, load_corpus
from model.lm import LMConfig, LSTMLM
from model.text import Vocab


def add_arguments(p) -> None:
    p.add_argument("--corpus", nargs="+", metavar="FILE", help="plain-text files, one message per line (default: the chitchat-dataset package)")
    p.add_argument("--out", default="runs/default", help="run directory for checkpoints last.pt and best.pt (its parent must exist)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt (model, optimiser, epoch, position in the epoch)")
    p.add_argument("--vocab-size", type=int, default=10000, help="vocabulary size including the 4 special tokens")
    p.add_argument("--embedding", type=int, default=128, help="embedding size (tied with the output layer)")
    p.add_argument("--hidden", type=int, default=384, help="LSTM hidden size")
    p.add_argument("--layers", type=int, default=1, help="LSTM layers")
    p.add_argument("--dropout", type=float, default=0.25, help="dropout on embeddings and LSTM outputs")
    p.add_argument("--batch-size", type=int, default=64, help="messages per optimisation step, over all processes")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate; halved when validation perplexity does not improve")
    p.add_argument("--schedule", default="plateau", choices=["plateau", "cosine"],
                   help="plateau: keep --lr, halve it when validation does not improve; cosine: decay it to 5%% "
                        "over the run's budget (--epochs, or --max-minutes when that ends first)")
    p.add_argument("--epochs", type=int, default=20, help="maximum number of passes over the training split")
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: no limit)")
    p.add_argument("--max-minutes", type=float, default=0, help="stop after this much training time, with a checkpoint (0: no limit)")
    p.add_argument("--eval-every", type=int, default=0, help="validate and checkpoint every N steps (0: at the end of each epoch)")
    p.add_argument("--patience", type=int, default=3, help="stop after this many validations without a better perplexity")
    p.add_argument("--max-len", type=int, default=128, help="cap on tokens per message (longer ones are cut)")
    p.add_argument("--seed", type=int, default=1, help="random seed: same seed, same corpus, same machine -> same model")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: CUDA when available, else CPU")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    p.add_argument("--log-every", type=int, default=100, help="print progress every N steps")


class Run:
    """Distributed context: rank, world size, device; rank 0 does the talking and writing."""

    def __init__(self, device_arg: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        use_cuda = device_arg == "cuda" or (device_arg == "auto" and torch.cuda.is_available())
        if device_arg == "cuda" and not torch.cuda.is_available():
            raise CorpusError("--device cuda: no CUDA device is available")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = torch.device(f"cuda:{local}" if use_cuda else "cpu")
        if self.world > 1:
            dist.init_process_group("nccl" if use_cuda else "gloo")
        if use_cuda:
            torch.cuda.set_device(self.device)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def log(self, msg: str) -> None:
        if self.main:
            print(msg, flush=True)

    def sum(self, *values: float) -> list[float]:
        if self.world == 1:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def close(self) -> None:
        if self.world > 1:
            dist.destroy_process_group()


def to_device(seqs, device):
    inputs, targets = pad_batch(seqs)
    return torch.from_numpy(inputs).to(device), torch.from_numpy(targets).to(device)


def loss_of(model, inputs, targets, autocast: bool):
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
        logits, _ = model(inputs)
    return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE)


@torch.no_grad()
def validation_ppl(model, seqs, run: Run, batch_size: int = 256) -> float:
    """Perplexity over this rank's share of the validation messages, summed over ranks."""
    model.eval()
    nll = count = 0.0
    mine = seqs[run.rank :: run.world]
    order = np.argsort([len(s) for s in mine])
    for i in range(0, len(order), batch_size):
        inputs, targets = to_device([mine[j] for j in order[i : i + batch_size]], run.device)
        logits, _ = model(inputs)
        nll += F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE, reduction="sum").item()
        count += (targets != IGNORE).sum().item()
    model.train()
    nll, count = run.sum(nll, count)
    return math.exp(nll / max(count, 1))


def prepare(args, run: Run, resumed: dict | None):
    corpus = load_corpus(args.corpus)
    if resumed is not None:
        vocab = Vocab(tuple(resumed["vocab"]))
    else:
        vocab = Vocab.build(corpus.splits["train"], args.vocab_size)
    train = truncate(encode_messages(corpus.splits["train"], vocab), args.max_len)
    valid = truncate(encode_messages(corpus.splits["valid"] or corpus.splits["train"][:200], vocab), args.max_len)
    run.log(f"corpus {corpus.source}: {len(train):,} training messages, "
            f"{sum(len(s) - 1 for s in train):,} tokens; vocabulary {len(vocab):,}")
    return corpus, vocab, train, valid


def format_eta(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def cosine_lr(args, state: dict, steps_per_epoch: int) -> float:
    """--lr decayed along a half cosine to 5% of it, by the share of the budget spent:
    steps of --epochs, or minutes of --max-minutes, whichever is further along."""
    done = state["step"] / (args.epochs * steps_per_epoch)
    if args.max_minutes:
        done = max(done, state["train_seconds"] / (args.max_minutes * 60))
    return args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(done, 1.0))))


def set_lr(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def check_out_dir(out: Path) -> None:
    if not out.parent.is_dir():
        raise CorpusError(f"output directory's parent does not exist: {out.parent}")


def main(args) -> int:
    out = Path(args.out)
    check_out_dir(out)
    if args.vocab_size <= 4:
        raise CorpusError(f"--vocab-size must be greater than 4 (the special tokens), got {args.vocab_size}")
    if args.threads:
        torch.set_num_threads(args.threads)
    run = Run(args.device)
    resumed = checkpoint.load(out / "last.pt") if args.resume else None
    torch.manual_seed(args.seed)
    corpus, vocab, train, valid = prepare(args, run, resumed)

    cfg = LMConfig(len(vocab), args.embedding, args.hidden, args.layers, args.dropout)
    if resumed is not None:
        cfg = LMConfig(**resumed["config"])
    model = LSTMLM(cfg).to(run.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    state = {"epoch": 0, "batch_in_epoch": 0, "step": 0, "best_valid_ppl": float("inf"),
             "bad_evals": 0, "lr": args.lr, "train_seconds": 0.0, "history": []}
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        state.update(resumed["progress"])
        run.log(f"resumed from {out / 'last.pt'} at epoch {state['epoch'] + 1}, step {state['step']}")
    set_lr(optimizer, state["lr"])
    ddp = torch.nn.parallel.DistributedDataParallel(model) if run.world > 1 else model
    run.log(f"model: {model.num_parameters():,} parameters {cfg.to_dict()}; device {run.device}, {run.world} process(es)")
    if run.main:
        out.mkdir(exist_ok=True)

    def save_checkpoint(name: str) -> None:
        if run.main:
            checkpoint.save(out / name, {
                "model": model.state_dict(), "config": cfg.to_dict(), "vocab": list(vocab.tokens),
                "optimizer": optimizer.state_dict(), "progress": state,
                "corpus": {"source": corpus.source, "fingerprint": corpus.fingerprint()},
                "hardware": describe_hardware(str(run.device)) + (f" x {run.world} processes" if run.world > 1 else ""),
                "args": {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool, list, type(None)))},
            })

    def validate() -> bool:
        """Validate, checkpoint, adjust the learning rate; False when it is time to stop."""
        ppl = validation_ppl(ddp, valid, run)
        improved = ppl < state["best_valid_ppl"]
        state["history"].append({"step": state["step"], "epoch": state["epoch"] + 1, "valid_ppl": round(ppl, 3)})
        if improved:
            state.update(best_valid_ppl=ppl, bad_evals=0)
            save_checkpoint("best.pt")
        else:
            state["bad_evals"] += 1
            if args.schedule == "plateau":
                state["lr"] /= 2
                set_lr(optimizer, state["lr"])
        save_checkpoint("last.pt")
        run.log(f"validation perplexity {ppl:.2f}{' (best)' if improved else ''}; lr {optimizer.param_groups[0]['lr']:.2g}")
        return state["bad_evals"] < args.patience

    lengths = np.array([len(s) for s in train])
    autocast = run.device.type == "cuda"
    start_time = time.time() - state["train_seconds"]
    tokens_seen, t_mark = 0, time.time()
    stop = False
    while state["epoch"] < args.epochs and not stop:
        batches = batch_indices(lengths, args.batch_size, args.seed + state["epoch"])
        steps_per_epoch = len(batches)
        for b in range(state["batch_in_epoch"], steps_per_epoch):
            rows = batches[b][run.rank :: run.world]
            inputs, targets = to_device([train[i] for i in rows], run.device)
            loss = loss_of(ddp, inputs, targets, autocast)
            if args.schedule == "cosine":
                set_lr(optimizer, cosine_lr(args, state, steps_per_epoch))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            state["step"] += 1
            state["batch_in_epoch"] = b + 1
            tokens_seen += int((targets != IGNORE).sum()) * run.world
            state["train_seconds"] = time.time() - start_time
            if state["step"] % args.log_every == 0:
                rate = tokens_seen / (time.time() - t_mark)
                left = (args.epochs - state["epoch"]) * steps_per_epoch - b - 1
                eta = left * state["train_seconds"] / max(state["step"], 1)
                if args.max_minutes:
                    eta = min(eta, args.max_minutes * 60 - state["train_seconds"])
                run.log(f"epoch {state['epoch'] + 1} step {b + 1}/{steps_per_epoch} loss {loss.item():.3f} "
                        f"{rate:,.0f} tokens/s eta {format_eta(max(eta, 0))}")
                tokens_seen, t_mark = 0, time.time()
            out_of_time = args.max_minutes and state["train_seconds"] >= args.max_minutes * 60
            out_of_steps = args.max_steps and state["step"] >= args.max_steps
            if (args.eval_every and state["step"] % args.eval_every == 0) or out_of_time or out_of_steps:
                stop = not validate() or bool(out_of_time or out_of_steps)
                if stop:
                    break
        else:
            state.update(epoch=state["epoch"] + 1, batch_in_epoch=0)
            stop = not validate()
    run.log(f"done: best validation perplexity {state['best_valid_ppl']:.2f} after {state['step']} steps, "
            f"{format_eta(state['train_seconds'])}; checkpoint {out / 'best.pt'}")
    run.close()
    return 0
