"""`nextword evaluate`: a model next to an interpolated Kneser–Ney trigram, on a split.

The model is a training checkpoint (torch) or an exported model directory (onnxruntime,
no torch: fed one token per step with the state carried, the way the service feeds it).
Both columns use the model's vocabulary and the trigram is trained on the same train
split, so they are comparable; both are ranked in the strip a server gives
(model/engine/strip.py), with the same main dictionary, and the LSTM also without it.
Definitions: model/evaluate/quality.py.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.data import CorpusError, encode_messages, load_corpus
from model.engine.contract import DICTIONARY, SHIPPED_MODEL
from model.engine.layouts import DEFAULT_LAYOUT, LAYOUTS
from model.engine.personal import MIN_COUNT as USER_MIN_COUNT
from model.engine.runtime import Graph, Runtime
from model.engine.strip import StripBuilder
from model.engine.suggest import blocklist
from model.engine.text import EOS_ID, Vocab
from model.evaluate import personal as evaluate_personal
from model.evaluate import quality
from model.evaluate.ngram import KneserNeyTrigram
from model.evaluate.personal import CROWD
from model.evaluate.typist import Typist
from model.train.batches import pad_batch

ONNX_BATCH = 32  # messages stepped together through onnxruntime


def add_arguments(p) -> None:
    p.add_argument("--checkpoint", default="runs/default/best.pt", help="checkpoint written by `nextword train` (needs the 'train' extra: torch)")
    p.add_argument("--model-dir", default="", help="evaluate an exported model directory with onnxruntime instead (no torch)")
    p.add_argument("--int8", action="store_true", help="with --model-dir: score model.int8.onnx")
    p.add_argument("--messages", default="", help="evaluate on these messages (one per line) instead of a split; no baseline")
    p.add_argument("--corpus", nargs="+", metavar="FILE", help="plain-text files, one message per line (default: the chitchat-dataset package)")
    p.add_argument("--split", default="test", choices=["test", "valid"], help="which split to evaluate on")
    p.add_argument("--limit", type=int, default=0, help="evaluate only the first N messages of the split (0: all)")
    p.add_argument("--typos", type=float, default=None, metavar="RATE",
                   help="type the messages as a noisy typist making a typo in each letter with this probability, "
                        "with plain completion and with corrections (model/evaluate/typist.py); prints KSR@3 and words left wrong")
    p.add_argument("--layout", default=DEFAULT_LAYOUT, choices=list(LAYOUTS), help="keyboard layout for --typos")
    p.add_argument("--seed", type=int, default=1, help="seed of the typist's typos, or of --crowd's draw")
    p.add_argument("--personal", action="store_true",
                   help="with and without each user's own model, messages typed in time order and learned as sent "
                        "(model/evaluate/personal.py); with --messages: the file's lines as one user")
    p.add_argument("--crowd", action="store_true",
                   help=f"with --personal: one user whose history is {CROWD[0]:,} messages of many people of the split "
                        f"(drawn with --seed), typing {CROWD[1]} more")
    p.add_argument("--fixed-scale", action="store_true",
                   help="with --personal: every user's weights at a new user's scale throughout (the mixture before it "
                        "adapted per user), for comparisons")
    p.add_argument("--no-user-bias", action="store_true",
                   help="with --personal: leave out the user's bias over the LSTM's words (unigram.txt), for comparisons")
    p.add_argument("--blocklist", default="default",
                   help="words the strip never shows, as `nextword serve --blocklist`: default (the shipped list), none, or a file")
    p.add_argument("--dictionary", default="model",
                   help="the main dictionary: 'model' (the model directory's; for a checkpoint, the shipped model's), "
                        "'none', or a dictionary.txt file")
    p.add_argument("--user-min-count", type=int, default=USER_MIN_COUNT,
                   help="with --personal: times a user must send a word the model does not know before it is suggested "
                        "(as `nextword serve --user-min-count`)")
    p.add_argument("--json", default="", help="also write the figures to this JSON file")


def torch_scorer(model):
    """score(list of id arrays) -> list of (len - 1, V) log-prob rows, batched on the CPU."""
    import torch  # the 'train' extra: a checkpoint needs it, a model directory does not

    @torch.no_grad()
    def score(seqs):
        inputs, _ = pad_batch(seqs)
        logits, _ = model(torch.from_numpy(inputs))
        logprobs = torch.log_softmax(logits, dim=-1).numpy()
        return [logprobs[i, : len(s) - 1] for i, s in enumerate(seqs)]

    return score


def onnx_scorer(graph: Graph):
    """score() for an exported graph: one token per onnxruntime call with the state carried,
    as the service feeds it; messages of similar length stepped together (a graph whose rows
    depend on each other, int8, runs them one at a time: Graph.run)."""

    def score_batch(seqs):
        steps = max(len(s) for s in seqs) - 1
        tokens = np.full((len(seqs), steps), EOS_ID, np.int64)  # past its end a row is ignored
        for i, s in enumerate(seqs):
            tokens[i, : len(s) - 1] = s[:-1]
        h, c = graph.zero_state(len(seqs))
        rows = []
        for t in range(steps):
            step = graph.run(tokens[:, t : t + 1], h, c)
            rows.append(step.logprobs)
            h, c = step.h, step.c
        rows = np.stack(rows, axis=1)  # (B, T, V)
        return [rows[i, : len(s) - 1] for i, s in enumerate(seqs)]

    def score(seqs):
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        out = [None] * len(seqs)
        for start in range(0, len(order), ONNX_BATCH):
            chosen = order[start : start + ONNX_BATCH]
            for i, rows in zip(chosen, score_batch([seqs[i] for i in chosen])):
                out[i] = rows
        return out

    return score


@dataclass
class Scoring:
    """A model to evaluate: its vocabulary, its scorer, what it is, and the files beside it."""
    vocab: Vocab
    score: Callable
    source: dict
    dictionary_file: Path | None = None
    unigram_file: Path | None = None


def model_dir_scorer(model_dir: str, int8: bool) -> Scoring:
    """An exported model directory, loaded as the server loads it."""
    runtime = Runtime(model_dir, "cpu", threads=0, int8=int8)
    graph = runtime.model_dir / runtime.graph
    source = {"model_dir": str(model_dir), "graph": graph.name, "graph_sha1": hashlib.sha1(graph.read_bytes()).hexdigest()}
    return Scoring(runtime.vocab, onnx_scorer(runtime), source, runtime.dictionary_file, runtime.unigram_file)


def dictionary_file(choice: str, model_dictionary: Path | None) -> Path | None:
    """The dictionary `--dictionary` names: the model's (else the shipped model's), none, or a file."""
    if choice == "none":
        return None
    if choice == "model":
        shipped = SHIPPED_MODEL / DICTIONARY
        return model_dictionary or (shipped if shipped.is_file() else None)
    path = Path(choice).expanduser()
    if not path.is_file():
        raise CorpusError(f"--dictionary {choice}: no such file")
    return path


def checkpoint_scorer(path: str) -> Scoring:
    """A training checkpoint (torch)."""
    try:
        from model.train import checkpoint
    except ImportError:
        raise CorpusError("evaluating a checkpoint needs torch: pip install -e '.[train]'; "
                          "an exported model needs no torch: pass --model-dir") from None
    model, vocab = checkpoint.restore_model(checkpoint.load(path))
    return Scoring(vocab, torch_scorer(model), {"checkpoint": str(path), "checkpoint_sha1": checkpoint.file_sha1(path)})


def trigram_scorer(trigram: KneserNeyTrigram):
    return lambda seqs: [trigram.logprobs(s) for s in seqs]


COLUMNS = {"lstm": "LSTM", "lstm_no_dictionary": "LSTM alone", "trigram_kn": "KN trigram"}


def table(result: dict) -> str:
    """The figures of each column the result has, side by side."""
    names = [n for n in COLUMNS if n in result]
    suffix = " + dict." if result.get("dictionary") else ""
    labels = [COLUMNS[n] + (suffix if n != "lstm_no_dictionary" else "") for n in names]
    lines = [f"{'':<40}" + "".join(f"{label:>20}" for label in labels)]
    for key, label, fmt in quality.FIGURES:
        lines.append(f"{label:<40}" + "".join(f"{fmt.format(result[n][key]):>20}" for n in names))
    return "\n".join(lines)


def describe(strips: StripBuilder) -> dict | None:
    d = strips.dictionary
    return {"words": d.size, "outside_vocabulary": len(d)} if d is not None else None


def compare(messages: list[str], strips: StripBuilder, score) -> dict:
    """The LSTM's figures in the strip with the dictionary, and without it when there is one."""
    result = {"lstm": quality.evaluate(messages, strips, score), "dictionary": describe(strips)}
    if strips.dictionary is not None:
        result["lstm_no_dictionary"] = quality.evaluate(messages, strips.without_dictionary(), score)
    return result


def run_evaluation(score, strips: StripBuilder, corpus, split: str, limit: int) -> dict:
    """The model (score) and the trigram baseline, with the same strips, on the first `limit` messages of a split."""
    messages = corpus.splits[split][: limit or None]
    if not messages:
        raise CorpusError(f"the {split} split of {corpus.source} is empty")
    t0 = time.time()
    trigram = KneserNeyTrigram(encode_messages(corpus.splits["train"], strips.vocab), len(strips.vocab))
    result = compare(messages, strips, score)
    baseline = quality.evaluate(messages, strips, trigram_scorer(trigram))
    return {"split": split, "messages": len(messages), "corpus": corpus.source, **result,
            "trigram_kn": baseline, "seconds": round(time.time() - t0, 1)}


def read_messages(path: str) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise CorpusError(f"cannot read messages {path}: {e.strerror}") from None
    messages = [m for m in (line.strip() for line in lines) if m]
    if not messages:
        raise CorpusError(f"{path} has no messages")
    return messages


def typing_table(result: dict) -> str:
    lines = [f"{'':<32}{'plain completion':>18}{'with corrections':>18}"]
    for key, label in (("ksr_3", "keystroke savings, 3 suggestions"), ("words_left_wrong", "words left wrong")):
        lines.append(f"{label:<32}{result['plain'][key]:>18.2%}{result['corrected'][key]:>18.2%}")
    return "\n".join(lines)


def run_typist(args, score, strips: StripBuilder, messages: list[str]) -> dict:
    if not 0 <= args.typos <= 1:
        raise CorpusError(f"--typos is a probability per letter, between 0 and 1; got {args.typos}")
    result = Typist(strips, args.typos, args.seed, args.layout).run(messages, score)
    print(f"noisy typist: typo rate {args.typos:g} per letter, seed {args.seed}, {args.layout}; "
          f"{result['messages']:,} messages, {result['plain']['words']:,} words")
    print(typing_table(result))
    return result


def main(args) -> int:
    if args.limit < 0:
        raise CorpusError(f"--limit must not be negative, got {args.limit}")
    if args.int8 and not args.model_dir:
        raise CorpusError("--int8 goes with --model-dir (a checkpoint has no int8 graph)")
    messages = read_messages(args.messages) if args.messages else None
    if args.user_min_count < 1:
        raise CorpusError(f"--user-min-count must be at least 1, got {args.user_min_count}")
    scoring = model_dir_scorer(args.model_dir, args.int8) if args.model_dir else checkpoint_scorer(args.checkpoint)
    score, source = scoring.score, scoring.source
    strips = StripBuilder.open(scoring.vocab, dictionary_file(args.dictionary, scoring.dictionary_file),
                               blocklist(args.blocklist), args.user_min_count, None if args.no_user_bias else scoring.unigram_file)
    if args.personal:
        corpus = f"{Path(args.messages).name}, as one user" if messages else f"chitchat-dataset, {args.split} split"
        crowd = args.seed if args.crowd else None
        result = {"corpus": corpus, "user_min_count": args.user_min_count, "dictionary": describe(strips),
                  "personal": evaluate_personal.run(score, strips, args.split, messages, crowd,
                                                          adapt=not args.fixed_scale)}
        print(f"personal suggestions: {corpus}")
        print(evaluate_personal.table(result["personal"]))
    elif args.typos is not None:
        chosen = messages or load_corpus(args.corpus).splits[args.split][: args.limit or None]
        result = run_typist(args, score, strips, chosen)
    elif messages is not None:  # no baseline: e.g. text of another domain, or what a typing client measured
        result = {"messages": len(messages), **compare(messages, strips, score)}
        print(f"{len(messages)} messages, {result['lstm']['words']} words, {result['lstm']['characters']} characters")
        print(table(result))
    else:
        result = run_evaluation(score, strips, load_corpus(args.corpus), args.split, args.limit)
        print(f"{result['split']} split of {result['corpus']}: {result['messages']:,} messages, "
              f"{result['lstm']['words']:,} words, {result['lstm']['characters']:,} characters")
        print(table(result))
    result.update(source)
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        except OSError as e:
            raise CorpusError(f"cannot write {args.json}: {e.strerror}") from None
        print(f"wrote {args.json}")
    return 0
