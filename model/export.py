"""`nextword export`: checkpoint -> model directory (DESIGN.md contract), verified.

The directory is built in a temporary sibling, checked (onnxruntime vs torch on real
test contexts, one step and many steps with the state carried), and only then renamed
into place: a model that fails the check is never written, and no half-written
directory is left behind.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from model import card, checkpoint
from model.card import describe_hardware
from model.data import encode_messages, load_corpus
from model.text import BOS_ID, EOS_ID, NUM_ID, SPECIALS, TOKENIZER_VERSION, UNK_ID

TOLERANCE = 1e-4  # max |logprob difference| accepted between onnxruntime and torch
TOP = 10          # and the top-10 tokens must be the same, in the same order
INPUTS, OUTPUTS = ["tokens", "h0", "c0"], ["logprobs", "hn", "cn"]


class ExportError(Exception):
    """The model cannot be exported or failed its check: reported as one line."""


def add_arguments(p) -> None:
    p.add_argument("--checkpoint", default="runs/default/best.pt", help="checkpoint written by `nextword train`")
    p.add_argument("--out", default="model/pretrained", help="model directory to write (its parent must exist)")
    p.add_argument("--force", action="store_true", help="replace OUT if it already exists")
    p.add_argument("--evaluation", default="", help="JSON written by `nextword evaluate --json` for this checkpoint (default: evaluate now)")
    p.add_argument("--corpus", nargs="+", metavar="FILE", help="corpus for the check contexts and evaluation (default: chitchat-dataset)")
    p.add_argument("--name", default="nextword-chitchat-lstm", help="model name written to the manifest")
    p.add_argument("--version", default="1.0.0", help="model version written to the manifest")
    p.add_argument("--int8", action="store_true", help="also write model.int8.onnx, dynamically quantised")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17)")


def export_onnx(model, path: Path, opset: int) -> None:
    import torch

    from model.lm import NextTokenLM

    cfg = model.cfg
    example = (torch.zeros(2, 3, dtype=torch.long),
               torch.zeros(cfg.layers, 2, cfg.hidden), torch.zeros(cfg.layers, 2, cfg.hidden))
    batch, steps = torch.export.Dim("batch"), torch.export.Dim("steps")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # dynamo=True: the TorchScript exporter's LSTM disagrees with torch by ~1e-2 here
        torch.onnx.export(NextTokenLM(model.eval()), example, str(path), dynamo=True, opset_version=opset,
                          input_names=INPUTS, output_names=OUTPUTS, verbose=False, external_data=False,
                          dynamic_shapes={"tokens": {0: batch, 1: steps}, "h0": {1: batch}, "c0": {1: batch}})


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
    import onnxruntime as ort
    import torch

    from model.lm import NextTokenLM

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    wrapper = NextTokenLM(model.eval())
    cfg, (B, T) = model.cfg, contexts.shape
    zeros = np.zeros((cfg.layers, B, cfg.hidden), np.float32)
    report = {}
    with torch.no_grad():
        for steps in (1, T):
            want = wrapper(torch.from_numpy(contexts[:, :steps]), torch.from_numpy(zeros), torch.from_numpy(zeros))[0].numpy()
            got = session.run(None, {"tokens": contexts[:, :steps], "h0": zeros, "c0": zeros})[0]
            report[f"max_diff_{steps}_step_call"] = compare(want, got, f"{steps}-step call")
        h, c = zeros, zeros
        for t in range(T):  # the service's way: one token per call, state carried
            got, h, c = session.run(None, {"tokens": contexts[:, t : t + 1], "h0": h, "c0": c})
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


def quantize(src: Path, dst: Path, contexts: np.ndarray) -> dict:
    """Dynamic int8 quantisation; reports how often its top-1 agrees with fp32."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    results = []
    for path in (src, dst):
        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        layers, _, hidden = s.get_inputs()[1].shape
        zeros = np.zeros((layers, len(contexts), hidden), np.float32)
        results.append(s.run(None, {"tokens": contexts, "h0": zeros, "c0": zeros})[0].argmax(1))
    return {"int8_top1_agreement": float((results[0] == results[1]).mean())}


def manifest(args, payload: dict, model, vocab, evaluation: dict | None, checks: dict) -> dict:
    cfg = model.cfg
    return {
        "name": args.name,
        "version": args.version,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "tokenizer_version": TOKENIZER_VERSION,
        "sizes": {"vocab": cfg.vocab, "embedding": cfg.embedding, "hidden": cfg.hidden,
                  "layers": cfg.layers, "parameters": model.num_parameters()},
        "special_tokens": dict(zip(SPECIALS, (UNK_ID, BOS_ID, EOS_ID, NUM_ID))),
        "corpus": payload.get("corpus", {}),
        "training": {k: payload.get("progress", {}).get(k) for k in ("epoch", "step", "best_valid_ppl", "train_seconds")},
        "evaluation": evaluation,
        "export_checks": checks,
    }


def load_evaluation(path: str, checkpoint_path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ExportError(f"cannot read evaluation {path}: {e}") from None
    if data.get("checkpoint_sha1") != checkpoint.file_sha1(checkpoint_path):
        raise ExportError(f"evaluation {path} was made for another checkpoint than {checkpoint_path}")
    return data


def write_card(directory: Path, meta: dict, payload: dict, out: str) -> None:
    hardware = payload.get("hardware") or describe_hardware() + " (the exporting machine; training hardware not recorded)"
    size = sum(f.stat().st_size for f in directory.iterdir())
    (directory / "MODEL_CARD.md").write_text(card.render(meta, payload.get("args", {}), hardware, out, size))


def main(args) -> int:
    out = Path(args.out)
    if not out.parent.is_dir():
        raise ExportError(f"output directory's parent does not exist: {out.parent}")
    if out.exists() and not args.force:
        raise ExportError(f"{out} already exists (use --force to replace it)")
    if args.opset < 17:
        raise ExportError(f"--opset must be at least 17, got {args.opset}")
    payload = checkpoint.load(args.checkpoint)
    model, vocab = checkpoint.restore_model(payload)
    corpus = load_corpus(args.corpus)
    if args.evaluation:
        evaluation = load_evaluation(args.evaluation, args.checkpoint)
    else:
        from model.evaluate import run_evaluation
        print("evaluating on the test split (pass --evaluation to reuse a saved one) ...", flush=True)
        evaluation = run_evaluation(model, vocab, corpus, "test", 0)
    contexts = check_contexts(encode_messages(corpus.splits["test"] or corpus.splits["train"], vocab))

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private (0700); a model directory is for others to read
    try:
        export_onnx(model, tmp / "model.onnx", args.opset)
        checks = verify(model, tmp / "model.onnx", contexts)
        if args.int8:
            checks.update(quantize(tmp / "model.onnx", tmp / "model.int8.onnx", contexts))
        vocab.save(tmp / "vocab.txt")
        meta = manifest(args, payload, model, vocab, evaluation, checks)
        (tmp / "manifest.json").write_text(json.dumps(meta, indent=2) + "\n")
        write_card(tmp, meta, payload, args.out)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"wrote {out}: {', '.join(sorted(f.name for f in out.iterdir()))} ({size / 1e6:.1f} MB); "
          f"checks {json.dumps(checks)}")
    return 0

