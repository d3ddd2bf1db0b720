"""`nextword evaluate`: the LSTM next to an interpolated Kneser–Ney trigram, on the test split.

Both models use the same vocabulary (the checkpoint's) and the trigram is trained on the
same train split, so the two columns are comparable. Definitions: model/metrics.py.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from model import metrics
from model.data import CorpusError, encode_messages, load_corpus
from model.ngram import KneserNeyTrigram

ROWS = [
    ("perplexity", "perplexity (lower is better)", "{:.2f}"),
    ("top1_accuracy", "next word, top-1 accuracy", "{:.2%}"),
    ("top3_accuracy", "next word, top-3 accuracy", "{:.2%}"),
    ("completion_top3_after_1", "completion top-3 after 1 letter", "{:.2%}"),
    ("completion_top3_after_2", "completion top-3 after 2 letters", "{:.2%}"),
    ("ksr_1", "keystroke savings, 1 suggestion", "{:.2%}"),
    ("ksr_3", "keystroke savings, 3 suggestions", "{:.2%}"),
    ("ksr_5", "keystroke savings, 5 suggestions", "{:.2%}"),
]


def add_arguments(p) -> None:
    p.add_argument("--checkpoint", default="runs/default/best.pt", help="checkpoint written by `nextword train`")
    p.add_argument("--model-dir", default="", help="evaluate an exported model directory with onnxruntime instead (no torch)")
    p.add_argument("--messages", default="", help="evaluate the LSTM on these messages (one per line) instead of a split; no baseline")
    p.add_argument("--corpus", nargs="+", metavar="FILE", help="plain-text files, one message per line (default: the chitchat-dataset package)")
    p.add_argument("--split", default="test", choices=["test", "valid"], help="which split to evaluate on")
    p.add_argument("--limit", type=int, default=0, help="evaluate only the first N messages of the split (0: all)")
    p.add_argument("--json", default="", help="also write the figures to this JSON file")


def torch_scorer(model):
    """score(list of id arrays) -> list of (len - 1, V) log-prob rows, batched on the CPU."""
    import torch

    from model.batches import pad_batch

    @torch.no_grad()
    def score(seqs):
        inputs, _ = pad_batch(seqs)
        logits, _ = model(torch.from_numpy(inputs))
        logprobs = torch.log_softmax(logits, dim=-1).numpy()
        return [logprobs[i, : len(s) - 1] for i, s in enumerate(seqs)]

    return score


def onnx_scorer(model_dir: str):
    """score() for an exported model: one token per onnxruntime call with the state carried,
    the way the service feeds it."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(Path(model_dir) / "model.onnx"), providers=["CPUExecutionProvider"])
    layers, _, hidden = session.get_inputs()[1].shape

    def score(seqs):
        out = []
        for s in seqs:
            h = c = np.zeros((layers, 1, hidden), np.float32)
            rows = []
            for token in s[:-1]:
                logprobs, h, c = session.run(None, {"tokens": np.array([[token]], np.int64), "h0": h, "c0": c})
                rows.append(logprobs[0])
            out.append(np.stack(rows))
        return out

    return score


def trigram_scorer(trigram: KneserNeyTrigram):
    return lambda seqs: [trigram.logprobs(s) for s in seqs]


def table(columns: dict[str, dict]) -> str:
    names = list(columns)
    lines = [f"{'':<36}" + "".join(f"{n:>16}" for n in names)]
    for key, label, fmt in ROWS:
        lines.append(f"{label:<36}" + "".join(f"{fmt.format(columns[n][key]):>16}" for n in names))
    return "\n".join(lines)


def run_evaluation(model, vocab, corpus, split: str, limit: int) -> dict:
    messages = corpus.splits[split][: limit or None]
    if not messages:
        raise CorpusError(f"the {split} split of {corpus.source} is empty")
    t0 = time.time()
    trigram = KneserNeyTrigram(encode_messages(corpus.splits["train"], vocab), len(vocab))
    lstm = metrics.evaluate(messages, vocab, torch_scorer(model))
    baseline = metrics.evaluate(messages, vocab, trigram_scorer(trigram))
    return {"split": split, "messages": len(messages), "corpus": corpus.source,
            "lstm": lstm, "trigram_kn": baseline, "seconds": round(time.time() - t0, 1)}


def evaluate_messages(args) -> int:
    """The LSTM alone on given messages (e.g. to compare with what a typing client measured)."""
    from model.text import Vocab

    try:
        messages = [m for m in (line.strip() for line in Path(args.messages).read_text(encoding="utf-8").splitlines()) if m]
    except OSError as e:
        raise CorpusError(f"cannot read messages {args.messages}: {e.strerror}") from None
    if args.model_dir:
        vocab, score = Vocab.load(Path(args.model_dir) / "vocab.txt"), onnx_scorer(args.model_dir)
    else:
        from model import checkpoint
        model, vocab = checkpoint.restore_model(checkpoint.load(args.checkpoint))
        score = torch_scorer(model)
    result = metrics.evaluate(messages, vocab, score)
    print(f"{len(messages)} messages, {result['words']} words, {result['characters']} characters")
    print(table({"LSTM": result}))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def main(args) -> int:
    from model import checkpoint

    if args.messages:
        return evaluate_messages(args)
    model, vocab = checkpoint.restore_model(checkpoint.load(args.checkpoint))
    corpus = load_corpus(args.corpus)
    result = run_evaluation(model, vocab, corpus, args.split, args.limit)
    result["checkpoint_sha1"] = checkpoint.file_sha1(args.checkpoint)
    print(f"{result['split']} split of {result['corpus']}: {result['messages']:,} messages, "
          f"{result['lstm']['words']:,} words, {result['lstm']['characters']:,} characters")
    print(table({"LSTM": result["lstm"], "KN trigram": result["trigram_kn"]}))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0

