"""`nextword export`: checkpoint -> model directory (model/engine/contract.py), verified.

The directory is built in a temporary sibling, checked (onnxruntime vs torch on real
test contexts, one step and many steps with the state carried; the int8 graph against
the fp32 one on real test messages), and only then renamed into place: a model that
fails a check is never written, and no half-written directory is left behind. The
shipped model (model/pretrained) is replaced only when asked in so many words.
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort

from model.data import encode_messages, load_corpus
from model.engine.contract import (
    CARD,
    DICTIONARY,
    FP32_GRAPH,
    INPUTS,
    INT8_GRAPH,
    MANIFEST,
    OUTPUTS,
    PER_ROW,
    SHIPPED_MODEL,
    VOCAB,
    feed,
)
from model.engine.errors import UserError
from model.engine.runtime import Graph
from model.engine.strip import StripBuilder
from model.engine.suggest import blocklist
from model.engine.text import BOS_ID, EOS_ID, NUM_ID, SPECIALS, TOKENIZER_VERSION, UNK_ID
from model.evaluate import quality
from model.evaluate.command import onnx_scorer, run_evaluation, torch_scorer
from model.evaluate.typist import Typist
from model.export import card, quantize, unigram
from model.export import dictionary as main_dictionary
from model.train.hardware import describe_hardware

TOLERANCE = 1e-4          # max |logprob difference| accepted between onnxruntime and torch
TOP = 10                  # and the top-10 tokens must be the same, in the same order
INT8_MIN_AGREEMENT = 0.98  # int8 graph: top-1 the same as fp32's on at least this share of contexts
INT8_MAX_KSR_LOSS = 0.002  # and KSR@3 at most 0.2 points below fp32's
ROWS_TOLERANCE = 1e-6      # and a row's log-probabilities the same alone and in a batch of ROWS_BATCH
ROWS_BATCH = 64


class ExportError(UserError):
    """The model cannot be exported or failed its check: reported as one line."""


def add_arguments(p) -> None:
    p.add_argument("--checkpoint", default="runs/default/best.pt", help="checkpoint written by `nextword train`")
    p.add_argument("--out", default="", help="model directory to write (default: 'model' beside the checkpoint)")
    p.add_argument("--force", action="store_true", help="replace OUT if it already exists (never the shipped model: see next)")
    p.add_argument("--replace-shipped-model", action="store_true",
                   help="allow OUT to be model/pretrained, the model `nextword serve` ships with (maintainers only)")
    p.add_argument("--evaluation", default="", help="JSON written by `nextword evaluate --json` for this checkpoint (default: evaluate now)")
    p.add_argument("--corpus", nargs="+", metavar="FILE", help="corpus for the check contexts and evaluation (default: chitchat-dataset)")
    p.add_argument("--personal-evaluation", nargs="+", default=[], metavar="JSON",
                   help="JSON written by `nextword evaluate --model-dir DIR --personal --json` for a graph with the same "
                        "bytes as the one exported: its figures go into the card")
    p.add_argument("--name", default="", help="model name for the manifest (default: nextword-<corpus>-lstm)")
    p.add_argument("--version", default="", help="model version for the manifest (default: the date and the checkpoint's digest)")
    p.add_argument("--int8", action="store_true", help="also write model.int8.onnx, dynamically quantised and checked against fp32")
    p.add_argument("--int8-only", action="store_true",
                   help="write only model.int8.onnx (4x smaller); its figures are measured through that graph")
    p.add_argument("--check-messages", type=int, default=2000, help="test messages for the int8 check (top-1 agreement, KSR@3)")
    p.add_argument("--typo-rates", default="0,0.05",
                   help="typo rates for the noisy typist's figures in the card (nextword evaluate --typos); '' for none")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17)")


def export_onnx(model, path: Path, opset: int) -> None:
    import torch

    from model.train.lm import NextTokenLM

    cfg = model.cfg
    example = (torch.zeros(2, 3, dtype=torch.long),
               torch.zeros(cfg.layers, 2, cfg.hidden), torch.zeros(cfg.layers, 2, cfg.hidden))
    batch, steps = torch.export.Dim("batch"), torch.export.Dim("steps")
    with quiet_exporter():
        # dynamo=True: the TorchScript exporter's LSTM disagrees with torch by ~1e-2 here
        torch.onnx.export(NextTokenLM(model).eval(), example, str(path), dynamo=True, opset_version=opset,
                          input_names=list(INPUTS), output_names=list(OUTPUTS), verbose=False, external_data=False,
                          dynamic_shapes=dict(zip(INPUTS, ({0: batch, 1: steps}, {1: batch}, {1: batch}))))


# What torch's exporter says on every export of this model, none of it about the result
# (which verify() checks): the opset it converts to, optional packages it looks for, its
# own deprecations, the LSTM's flattened weights, its progress lines. Anything else is kept.
EXPECTED_WARNINGS = r"(?is).*(opset|version.conver|torchvision|onnxscript|dynamic_shapes|torch\.export|LeafSpec|axis name|_check_is_size|_flat_weights)"


@contextlib.contextmanager
def quiet_exporter():
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()) as said:
        warnings.filterwarnings("ignore", message=EXPECTED_WARNINGS)
        levels = {name: logging.getLogger(name).level for name in ("torch.onnx", "torch.export", "onnxscript")}
        for name in levels:
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
    for line in said.getvalue().splitlines():  # its progress lines go; anything unexpected is shown
        if line.strip() and not re.match(r"\[torch\.onnx\]|Applied \d+ of general|.*✅", line):
            print(line)


def check_contexts(seqs: list[np.ndarray], n: int = 32, steps: int = 12) -> np.ndarray:
    """A batch of real contexts: the first `steps` tokens of n messages (padded by </s>)."""
    chosen = sorted(seqs, key=len, reverse=True)[:n]
    batch = np.full((len(chosen), steps), EOS_ID, dtype=np.int64)
    for i, s in enumerate(chosen):
        batch[i, : min(steps, len(s) - 1)] = s[: min(steps, len(s) - 1)]
    return batch


def verify(model, onnx_path: Path, contexts: np.ndarray) -> dict:
    """onnxruntime vs torch: one call with all steps, and one step at a time with the state
    carried; returns the largest differences. Raises ExportError when out of tolerance."""
    import torch

    from model.train.lm import NextTokenLM

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    wrapper = NextTokenLM(model.eval())
    cfg, (B, T) = model.cfg, contexts.shape
    zeros = np.zeros((cfg.layers, B, cfg.hidden), np.float32)
    report = {}
    with torch.no_grad():
        for steps in (1, T):
            want = wrapper(torch.from_numpy(contexts[:, :steps]), torch.from_numpy(zeros), torch.from_numpy(zeros))[0].numpy()
            got = session.run(None, feed(contexts[:, :steps], zeros, zeros))[0]
            report[f"max_diff_{steps}_step_call"] = compare(want, got, f"{steps}-step call")
        h, c = zeros, zeros
        for t in range(T):  # the service's way: one token per call, state carried
            got, h, c = session.run(None, feed(contexts[:, t : t + 1], h, c))
        report["max_diff_state_carried"] = compare(want, got, f"{T} single steps with state carried")
    return report


def compare(want: np.ndarray, got: np.ndarray, what: str) -> float:
    diff = float(np.abs(want - got).max())
    top_want = np.argsort(-want, axis=1, kind="stable")[:, :TOP]
    top_got = np.argsort(-got, axis=1, kind="stable")[:, :TOP]
    if diff > TOLERANCE or not np.array_equal(top_want, top_got):
        raise ExportError(f"onnxruntime disagrees with torch on {what}: max diff {diff:.2e} "
                          f"(limit {TOLERANCE:.0e}), top-{TOP} equal: {np.array_equal(top_want, top_got)}")
    return diff


def check_int8(fp32: Path, int8: Path, layers: int, hidden: int, messages: list[str], vocab) -> dict:
    """The int8 graph against the fp32 one on real test messages, both fed as the service
    feeds them: top-1 agreement over every context, and KSR@3; and each row the same alone
    as in a batch (`rows_identical`)."""
    seqs = encode_messages(messages, vocab)
    graphs = {name: Graph(g, layers, hidden, "cpu", threads=0) for name, g in (("fp32", fp32), ("int8", int8))}
    rows = {name: onnx_scorer(graph)(seqs) for name, graph in graphs.items()}
    agree = np.mean(np.concatenate([a.argmax(1) == b.argmax(1) for a, b in zip(rows["fp32"], rows["int8"])]))
    ksr = {name: quality.evaluate(messages, StripBuilder(vocab), replay(r))["ksr_3"] for name, r in rows.items()}
    apart = rows_identical(graphs["int8"], seqs)
    report = {"int8_top1_agreement": round(float(agree), 4), "int8_ksr_3": ksr["int8"], "fp32_ksr_3": ksr["fp32"],
              "int8_check_messages": len(messages), "int8_rows_alone_vs_batch": apart}
    if agree < INT8_MIN_AGREEMENT or ksr["fp32"] - ksr["int8"] > INT8_MAX_KSR_LOSS or apart > ROWS_TOLERANCE:
        raise ExportError(f"the int8 graph is too far from fp32: top-1 agreement {agree:.2%} (at least "
                          f"{INT8_MIN_AGREEMENT:.0%}), KSR@3 {ksr['int8']:.2%} vs {ksr['fp32']:.2%} "
                          f"(at most {INT8_MAX_KSR_LOSS:.1%} below), a row alone vs in a batch of {ROWS_BATCH}: "
                          f"{apart:.1e} (at most {ROWS_TOLERANCE:.0e})")
    return report


def rows_identical(graph: Graph, seqs: list[np.ndarray]) -> float:
    """The largest difference of a row's log-probabilities (and state) between running it
    alone and in a batch of ROWS_BATCH real contexts, after a sequence call and a step."""
    contexts = check_contexts(seqs, ROWS_BATCH, 8)
    h, c = graph.zero_state(len(contexts))
    batch = graph.run(contexts, h, c)
    step = graph.run(contexts[:, :1], batch.h, batch.c)
    worst = 0.0
    for i in range(len(contexts)):
        alone = graph.run(contexts[i : i + 1], h[:, i : i + 1], c[:, i : i + 1])
        after = graph.run(contexts[i : i + 1, :1], alone.h, alone.c)
        worst = max(worst, float(np.abs(alone.logprobs[0] - batch.logprobs[i]).max()),
                    float(np.abs(alone.h[:, 0] - batch.h[:, i]).max()), float(np.abs(after.logprobs[0] - step.logprobs[i]).max()))
    return worst


def replay(rows: list[np.ndarray]):
    """A scorer that hands out rows already computed, in order."""
    it = iter(rows)
    return lambda seqs: [next(it) for _ in seqs]


def typist_figures(args, score, strips: StripBuilder, messages: list[str]) -> list[dict]:
    """The noisy typist (model/evaluate/typist.py) at each rate, through the graph the service serves."""
    rates = [float(r) for r in args.typo_rates.split(",") if r.strip()]
    if rates and messages:
        print(f"typing the test split as a noisy typist at rates {', '.join(f'{r:g}' for r in rates)} ...", flush=True)
    return [{k: v for k, v in Typist(strips, rate).run(messages, score).items() if k != "examples"}
            for rate in rates if messages]


def default_name(corpus_source: str) -> str:
    stem = Path(corpus_source.split(",")[0]).stem.removesuffix("-dataset")
    return f"nextword-{re.sub(r'[^a-z0-9]+', '-', stem.lower()).strip('-') or 'custom'}-lstm"


def default_version(checkpoint_sha1: str) -> str:
    """The date and the checkpoint's digest: two exports of different checkpoints never share
    a version (GetModelInfo and nextword_model_info tell them apart), the same one always does."""
    return f"{datetime.date.today():%Y.%m.%d}+{checkpoint_sha1[:8]}"


def manifest(args, payload: dict, model, evaluation: dict | None, checks: dict, graphs: list[str]) -> dict:
    cfg, corpus, model_vocab = model.cfg, payload.get("corpus", {}), payload["vocab"]
    return {
        "name": args.name or default_name(corpus.get("source", "custom")),
        "version": args.version or default_version(payload["sha1"]),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "tokenizer_version": TOKENIZER_VERSION,
        "graphs": graphs,
        **({"int8_scheme": PER_ROW} if INT8_GRAPH in graphs else {}),
        "blocklist": {"list": "default", "words": len(blocked := blocklist("default")),
                      "in_vocabulary": sum(t.lower() in blocked for t in model_vocab)},
        "sizes": {"vocab": cfg.vocab, "embedding": cfg.embedding, "hidden": cfg.hidden,
                  "layers": cfg.layers, "parameters": model.num_parameters()},
        "special_tokens": dict(zip(SPECIALS, (UNK_ID, BOS_ID, EOS_ID, NUM_ID))),
        "corpus": corpus,
        "training": {k: payload.get("progress", {}).get(k) for k in ("epoch", "step", "best_valid_ppl", "train_seconds", "tokens")},
        "evaluation": evaluation,
        "export_checks": checks,
    }


def load_evaluation(path: str, checkpoint_path: str) -> dict:
    from model.train import checkpoint

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ExportError(f"cannot read evaluation {path}: {e}") from None
    if data.get("checkpoint_sha1") != checkpoint.file_sha1(checkpoint_path):
        raise ExportError(f"evaluation {path} was made for another checkpoint than {checkpoint_path}")
    return data


def load_personal(paths: list[str], graph: Path) -> list[dict]:
    """Personal-suggestion figures measured on this very graph (same bytes)."""
    sha1 = hashlib.sha1(graph.read_bytes()).hexdigest()
    found = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise ExportError(f"cannot read personal evaluation {path}: {e}") from None
        if "personal" not in data:
            raise ExportError(f"{path} is not from `nextword evaluate --personal`")
        if data.get("graph_sha1") != sha1:
            raise ExportError(f"personal evaluation {path} was made with another graph than the {graph.name} exported")
        found.append({"corpus": data["corpus"], "groups": data["personal"]})
    return found


def export_command(args, out: Path, payload: dict) -> str:
    """The `nextword export` command line that wrote this directory (after the recovery of its
    checkpoint from an older int8 graph, when it was so: scripts/recover-checkpoint)."""
    flags = [f"--checkpoint {args.checkpoint}", f"--out {out}"]
    flags += [f"--corpus {' '.join(args.corpus)}"] if args.corpus else []
    flags += [f"--evaluation {args.evaluation}"] if args.evaluation else []
    flags += [f"--personal-evaluation {' '.join(args.personal_evaluation)}"] if args.personal_evaluation else []
    flags += [f"--{f.replace('_', '-')}" for f in ("int8", "int8_only", "replace_shipped_model", "force") if getattr(args, f)]
    flags += [f"--{f} {getattr(args, f)}" for f in ("name", "version") if getattr(args, f)]
    command = "nextword export " + " ".join(flags)
    if payload.get("recovered_from"):
        command = f"scripts/recover-checkpoint {Path(payload['recovered_from'].split(' ')[0]).parent} {args.checkpoint}\n{command}"
    return command


def write_card(directory: Path, meta: dict, payload: dict, command: str) -> None:
    hardware = payload.get("hardware") or describe_hardware() + " (the exporting machine; training hardware not recorded)"
    size = sum(f.stat().st_size for f in directory.iterdir())
    (directory / CARD).write_text(card.render(meta, payload.get("args", {}), hardware, command, size))


def check_args(args) -> Path:
    """The directory to write, after refusing what cannot or must not be done."""
    out = Path(args.out) if args.out else Path(args.checkpoint).parent / "model"
    if out.resolve() == SHIPPED_MODEL.resolve() and not args.replace_shipped_model:
        raise ExportError(f"{out} is the shipped model; pass --replace-shipped-model to write over it")
    if out.exists() and not (args.force or args.replace_shipped_model):
        raise ExportError(f"{out} already exists (use --force to replace it)")
    if args.opset < 17:
        raise ExportError(f"--opset must be at least 17, got {args.opset}")
    if args.check_messages < 1:
        raise ExportError(f"--check-messages must be at least 1, got {args.check_messages}")
    try:
        if any(not 0 <= float(r) <= 1 for r in args.typo_rates.split(",") if r.strip()):
            raise ValueError
    except ValueError:
        raise ExportError(f"--typo-rates must be probabilities between 0 and 1, got {args.typo_rates!r}") from None
    if args.int8_only and args.evaluation:
        raise ExportError("--int8-only measures its figures through the int8 graph: leave out --evaluation")
    return out


def build(args, payload: dict, out: Path, tmp: Path) -> dict:
    """Write and check everything in tmp; returns the manifest."""
    from model.train import checkpoint  # torch

    model, vocab = checkpoint.restore_model(payload)
    corpus = load_corpus(args.corpus)
    test = corpus.splits["test"] or corpus.splits["train"]
    export_onnx(model, tmp / FP32_GRAPH, args.opset)
    checks = verify(model, tmp / FP32_GRAPH, check_contexts(encode_messages(test, vocab)))
    cfg = model.cfg
    if args.int8 or args.int8_only:
        quantize.write(quantize.weights_of(model), tmp / INT8_GRAPH)
        checks.update(check_int8(tmp / FP32_GRAPH, tmp / INT8_GRAPH, cfg.layers, cfg.hidden, test[: args.check_messages], vocab))
    dictionary = main_dictionary.write(tmp, main_dictionary.build(), main_dictionary.MIN_ZIPF)
    strips = StripBuilder.open(vocab, tmp / DICTIONARY, blocklist("default"))
    if args.evaluation:
        evaluation = load_evaluation(args.evaluation, args.checkpoint)
    else:
        graph = tmp / INT8_GRAPH if args.int8_only else None
        print(f"evaluating {graph.name if graph else 'the checkpoint'} on the test split "
              "(pass --evaluation to reuse a saved one) ...", flush=True)
        score = onnx_scorer(Graph(graph, cfg.layers, cfg.hidden, "cpu", threads=0)) if graph else torch_scorer(model)
        evaluation = run_evaluation(score, strips, corpus, "test", 0)
        evaluation["scored_by"] = graph.name if graph else "torch checkpoint"
    graph = tmp / INT8_GRAPH if args.int8_only or args.int8 else tmp / FP32_GRAPH
    typing = typist_figures(args, onnx_scorer(Graph(graph, cfg.layers, cfg.hidden, "cpu", threads=0)), strips, corpus.splits["test"])
    if args.int8_only:
        (tmp / FP32_GRAPH).unlink()
    vocab.save(tmp / VOCAB)
    graphs = sorted(p.name for p in tmp.glob("*.onnx"))
    meta = manifest(args, payload, model, evaluation, checks, graphs)
    meta["typing"] = typing
    meta["dictionary"] = dictionary
    meta["unigram"] = unigram.write(tmp, corpus, vocab)
    meta["personal"] = load_personal(args.personal_evaluation, graph)
    (tmp / MANIFEST).write_text(json.dumps(meta, indent=2) + "\n")
    write_card(tmp, meta, payload, export_command(args, out, payload))
    return meta


def main(args) -> int:
    from model.train import checkpoint

    out = check_args(args)
    payload = checkpoint.load(args.checkpoint)
    payload["sha1"] = checkpoint.file_sha1(args.checkpoint)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private (0700); a model directory is for others to read
    try:
        meta = build(args, payload, out, tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"wrote {out}: {meta['name']} {meta['version']}, {', '.join(sorted(f.name for f in out.iterdir()))} "
          f"({size / 1e6:.1f} MB); checks {json.dumps(meta['export_checks'])}")
    return 0
