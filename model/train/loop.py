"""The training loop behind `nextword train` (torch).

Runs on CUDA when present (bf16 autocast) and on the CPU otherwise. Started by
`torchrun --nproc_per_node N`, it trains with DistributedDataParallel (nccl on GPU,
gloo on CPU): every rank takes its share of the rows of each global batch, so N
processes take the same optimisation steps as one process with the same --batch-size.
"""
from __future__ import annotations

import gc
import math
import os
import signal
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from model.data import encode_messages, load_corpus
from model.engine.text import Vocab
from model.train import checkpoint
from model.train.batches import IGNORE, batch_indices, pad_batch, truncate
from model.train.hardware import describe_hardware
from model.train.lm import LSTMLM, LMConfig
from model.train.recipe import TrainError


class Processes:
    """Who this process is among the training processes (rank, world size, device); rank 0
    does the talking and writing."""

    def __init__(self, device_arg: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        use_cuda = device_arg == "cuda" or (device_arg == "auto" and torch.cuda.is_available())
        if device_arg == "cuda" and not torch.cuda.is_available():
            raise TrainError("--device cuda: no CUDA device is available")
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
        """Every rank done (rank 0 may still be writing) before the group goes."""
        if self.world > 1:
            dist.barrier()
            dist.destroy_process_group()


def to_device(seqs, device):
    inputs, targets = pad_batch(seqs)
    return torch.from_numpy(inputs).to(device), torch.from_numpy(targets).to(device)


def loss_of(model, inputs, targets, autocast: bool):
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
        logits, _ = model(inputs)
    return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE)


@torch.no_grad()
def validation_ppl(model, seqs, procs: Processes, batch_size: int = 256) -> float:
    """Perplexity over this rank's share of the validation messages, summed over ranks."""
    model.eval()
    nll = count = 0.0
    mine = seqs[procs.rank :: procs.world]
    order = np.argsort([len(s) for s in mine])
    for i in range(0, len(order), batch_size):
        inputs, targets = to_device([mine[j] for j in order[i : i + batch_size]], procs.device)
        logits, _ = model(inputs)
        nll += F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE, reduction="sum").item()
        count += (targets != IGNORE).sum().item()
    model.train()
    nll, count = procs.sum(nll, count)
    return math.exp(nll / max(count, 1))


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


class Trainer:
    """One training run: data, model, optimiser and progress, checkpointed as a plain dict."""

    def __init__(self, args):
        self.args, self.out = args, Path(args.out)
        if args.threads:
            torch.set_num_threads(args.threads)
        self.procs = Processes(args.device)
        self.signal: int | None = None  # Ctrl-C or SIGTERM, once it comes
        self.tokens_since, self.line_at = 0, time.time()  # since the last progress line
        resumed = checkpoint.load(self.out / "last.pt") if args.resume else None
        torch.manual_seed(args.seed)
        self._load_data(resumed)
        self.cfg = LMConfig(**resumed["config"]) if resumed else LMConfig(len(self.vocab), args.embedding, args.hidden, args.layers, args.dropout)
        self.model = LSTMLM(self.cfg).to(self.procs.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=args.lr)
        self.state = {"epoch": 0, "batch_in_epoch": 0, "step": 0, "best_valid_ppl": float("inf"),
                      "bad_evals": 0, "lr": args.lr, "train_seconds": 0.0, "tokens": 0, "history": []}
        if resumed is not None:
            self.model.load_state_dict(resumed["model"])
            self.optimizer.load_state_dict(resumed["optimizer"])
            self.state.update(resumed["progress"])
            self.procs.log(f"resumed from {self.out / 'last.pt'} at epoch {self.state['epoch'] + 1}, step {self.state['step']}")
        set_lr(self.optimizer, self.state["lr"])
        self.ddp = torch.nn.parallel.DistributedDataParallel(self.model) if self.procs.world > 1 else self.model
        self.procs.log(f"model: {self.model.num_parameters():,} parameters {self.cfg.to_dict()}; "
                       f"device {self.procs.device}, {self.procs.world} process(es)")
        if self.procs.main:
            self.out.mkdir(parents=True, exist_ok=True)

    def _load_data(self, resumed: dict | None) -> None:
        args = self.args
        self.corpus = load_corpus(args.corpus)
        train_split = self.corpus.splits["train"]
        self.vocab = Vocab(tuple(resumed["vocab"])) if resumed else Vocab.build(train_split, args.vocab_size)
        self.train = truncate(encode_messages(train_split, self.vocab), args.max_len)
        self.valid = truncate(encode_messages(self.corpus.splits["valid"] or train_split[:200], self.vocab), args.max_len)
        self.procs.log(f"corpus {self.corpus.source}: {len(self.train):,} training messages, "
                       f"{sum(len(s) - 1 for s in self.train):,} tokens; vocabulary {len(self.vocab):,}")

    def save(self, name: str) -> None:
        if not self.procs.main:
            return
        procs = self.procs
        checkpoint.save(self.out / name, {
            "model": self.model.state_dict(), "config": self.cfg.to_dict(), "vocab": list(self.vocab.tokens),
            "optimizer": self.optimizer.state_dict(), "progress": self.state,
            "corpus": {"source": self.corpus.source, "fingerprint": self.corpus.fingerprint()},
            "hardware": describe_hardware(str(procs.device)) + (f" x {procs.world} processes" if procs.world > 1 else ""),
            "args": {k: v for k, v in vars(self.args).items() if isinstance(v, (int, float, str, bool, list, type(None)))},
        })

    def validate(self) -> bool:
        """Validate, checkpoint, adjust the learning rate; False when it is time to stop."""
        state = self.state
        ppl = validation_ppl(self.ddp, self.valid, self.procs)
        improved = ppl < state["best_valid_ppl"]
        state["history"].append({"step": state["step"], "epoch": state["epoch"] + 1, "valid_ppl": round(ppl, 3)})
        if improved:
            state.update(best_valid_ppl=ppl, bad_evals=0)
            self.save("best.pt")
        else:
            state["bad_evals"] += 1
            if self.args.schedule == "plateau":
                state["lr"] /= 2
                set_lr(self.optimizer, state["lr"])
        self.save("last.pt")
        self.procs.log(f"validation perplexity {ppl:.2f}{' (best)' if improved else ''}; "
                       f"lr {self.optimizer.param_groups[0]['lr']:.2g}")
        return state["bad_evals"] < self.args.patience

    def step(self, rows: np.ndarray, steps_per_epoch: int) -> tuple[float, int]:
        """One optimisation step on this rank's rows; returns (loss, tokens over all ranks)."""
        inputs, targets = to_device([self.train[i] for i in rows], self.procs.device)
        if self.args.schedule == "cosine":
            set_lr(self.optimizer, cosine_lr(self.args, self.state, steps_per_epoch))
        loss = loss_of(self.ddp, inputs, targets, self.procs.device.type == "cuda")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        return loss.item(), int((targets != IGNORE).sum()) * self.procs.world

    def run_epoch(self, started: float) -> bool:
        """Train the rest of the current epoch; False when the run must stop."""
        args, state = self.args, self.state
        lengths = np.array([len(s) for s in self.train])
        batches = batch_indices(lengths, args.batch_size, args.seed + state["epoch"])
        for b in range(state["batch_in_epoch"], len(batches)):
            loss, n = self.step(batches[b][self.procs.rank :: self.procs.world], len(batches))
            self.tokens_since += n
            state.update(step=state["step"] + 1, batch_in_epoch=b + 1, train_seconds=time.time() - started,
                         tokens=state.get("tokens", 0) + n)
            if (args.log_every and state["step"] % args.log_every == 0) or time.time() - self.line_at >= args.progress_seconds:
                self._log_progress(b, len(batches), loss, self.tokens_since / (time.time() - self.line_at))
                self.tokens_since, self.line_at = 0, time.time()
            if self.stop_asked():
                self.save("last.pt")
                raise Stopped(self.signal)
            out_of_time = args.max_minutes and state["train_seconds"] >= args.max_minutes * 60
            out_of_steps = args.max_steps and state["step"] >= args.max_steps
            if (args.eval_every and state["step"] % args.eval_every == 0) or out_of_time or out_of_steps:
                if not self.validate() or out_of_time or out_of_steps:
                    return False
        state.update(epoch=state["epoch"] + 1, batch_in_epoch=0)
        return self.validate()

    def _log_progress(self, b: int, steps_per_epoch: int, loss: float, rate: float) -> None:
        args, state = self.args, self.state
        left = (args.epochs - state["epoch"]) * steps_per_epoch - b - 1
        eta = left * state["train_seconds"] / max(state["step"], 1)
        if args.max_minutes:
            eta = min(eta, args.max_minutes * 60 - state["train_seconds"])
        self.procs.log(f"epoch {state['epoch'] + 1} step {b + 1}/{steps_per_epoch} loss {loss:.3f} "
                       f"{rate:,.0f} tokens/s eta {format_eta(max(eta, 0))}")

    def stop_asked(self) -> bool:
        """Did Ctrl-C or SIGTERM come (to any of the processes: they stop at the same step)?"""
        asked = self.signal is not None
        return (self.procs.sum(float(asked))[0] > 0) if self.procs.world > 1 else asked

    def _ask_to_stop(self, signum, frame) -> None:
        self.signal = signum  # the loop saves a checkpoint after the step it is in

    def run(self) -> None:
        started = time.time() - self.state["train_seconds"]
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._ask_to_stop)
        try:
            while self.state["epoch"] < self.args.epochs and self.run_epoch(started):
                pass
        except Stopped as stop:
            self.procs.log(f"stopped ({signal.Signals(stop.signum).name if stop.signum else 'asked'}) at epoch "
                           f"{self.state['epoch'] + 1}, step {self.state['step']}: checkpoint {self.out / 'last.pt'}; "
                           f"continue with: nextword train --out {self.out} --resume (and the same flags)")
            self.close()
            raise
        self.procs.log(f"done: best validation perplexity {self.state['best_valid_ppl']:.2f} after {self.state['step']} "
                       f"steps, {format_eta(self.state['train_seconds'])}; checkpoint {self.out / 'best.pt'}")
        self.close()

    def close(self) -> None:
        # DistributedDataParallel's reducer goes before its process group: torn down after it,
        # at exit, it aborted a rank now and then ("terminate called without an active exception")
        self.ddp = self.model
        gc.collect()
        self.procs.close()


class Stopped(Exception):
    """Ctrl-C or SIGTERM during training: a checkpoint was saved."""

    def __init__(self, signum: int | None):
        super().__init__(signum)
        self.signum = signum


def train(args) -> int:
    """Train; 0 when done, 128 + the signal's number when stopped by one (a checkpoint saved)."""
    try:
        Trainer(args).run()
    except Stopped as stop:
        return 128 + (stop.signum or 0)
    return 0
