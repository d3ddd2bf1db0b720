"""The offline pipeline end to end on a tiny real corpus, through the `nextword` command."""
import json
import signal
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest

from conftest import ROOT, TINY_CORPUS, TINY_MODEL_FLAGS, nextword
from model.data import encode_messages, load_text_files
from model.export import command as export
from model.train import checkpoint

pytestmark = pytest.mark.slow  # see pyproject.toml


def test_data_prints_split_counts():
    out = nextword("data", "--corpus", TINY_CORPUS, "--vocab-size", "300").stdout
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()[:1] in (["train"], ["valid"], ["test"])}
    corpus = load_text_files([str(TINY_CORPUS)])
    assert {name: int(cells[0].replace(",", "")) for name, cells in rows.items()} == {
        name: len(messages) for name, messages in corpus.splits.items()}
    assert sum(len(m) for m in corpus.splits.values()) == sum(1 for line in TINY_CORPUS.read_text().splitlines() if line.strip())
    assert "vocabulary: 300 tokens" in out


def test_train_writes_checkpoints_and_reports_progress(tiny_run):
    payload = checkpoint.load(tiny_run / "ckpt" / "best.pt")
    assert payload["config"]["hidden"] == 32 and len(payload["vocab"]) == 300
    assert payload["progress"]["history"] and payload["progress"]["best_valid_ppl"] < 300


def test_same_seed_same_model(tmp_path):
    for name in ("a", "b"):
        nextword("train", "--corpus", TINY_CORPUS, "--out", tmp_path / name, "--epochs", "1", "--seed", "5", *TINY_MODEL_FLAGS)
    a, b = (checkpoint.load(tmp_path / n / "best.pt")["model"] for n in ("a", "b"))
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


def test_resume_continues_from_last_checkpoint(tmp_path):
    nextword("train", "--corpus", TINY_CORPUS, "--out", tmp_path / "r", "--epochs", "1", *TINY_MODEL_FLAGS)
    out = nextword("train", "--corpus", TINY_CORPUS, "--out", tmp_path / "r", "--epochs", "2", "--resume", *TINY_MODEL_FLAGS).stdout
    assert "resumed from" in out and "epoch 2" in out
    assert checkpoint.load(tmp_path / "r" / "last.pt")["progress"]["epoch"] == 2


def test_evaluate_prints_both_models_and_writes_json(tiny_model, tiny_run):
    result = json.loads((tiny_run / "eval.json").read_text())
    for column in ("lstm", "trigram_kn"):
        assert set(result[column]) >= {"perplexity", "top1_accuracy", "top3_accuracy", "completion_top3_after_1",
                                       "completion_top3_after_2", "ksr_1", "ksr_3", "ksr_5"}
    assert result["lstm"]["words"] == result["trigram_kn"]["words"] > 0


def test_export_writes_the_contract(tiny_model):
    assert {p.name for p in tiny_model.iterdir()} == {"model.onnx", "model.int8.onnx", "vocab.txt", "dictionary.txt", "unigram.txt",
                                                      "manifest.json", "MODEL_CARD.md"}
    manifest = json.loads((tiny_model / "manifest.json").read_text())
    counts = [int(n) for n in (tiny_model / "unigram.txt").read_text().split()]
    assert len(counts) == 300 and sum(counts) == manifest["unigram"]["tokens"] > 0  # a count per token, of the train split
    assert manifest["sizes"]["vocab"] == len((tiny_model / "vocab.txt").read_text().splitlines()) == 300
    assert manifest["evaluation"]["lstm"]["ksr_3"] >= 0 and manifest["special_tokens"]["<s>"] == 1
    digest = checkpoint.file_sha1(tiny_model.parent / "ckpt" / "best.pt")
    assert manifest["version"].endswith("+" + digest[:8])  # two checkpoints never share a version
    session = ort.InferenceSession(str(tiny_model / "model.onnx"))
    assert [i.name for i in session.get_inputs()] == ["tokens", "h0", "c0"]
    assert [o.name for o in session.get_outputs()] == ["logprobs", "hn", "cn"]


def test_onnx_matches_torch_on_real_contexts(tiny_model, tiny_run):
    model, vocab = checkpoint.restore_model(checkpoint.load(tiny_run / "ckpt" / "best.pt"))
    corpus = load_text_files([str(TINY_CORPUS)])
    contexts = export.check_contexts(encode_messages(corpus.splits["test"], vocab))
    report = export.verify(model, tiny_model / "model.onnx", contexts)
    assert max(report.values()) < export.TOLERANCE


def test_export_refuses_a_model_that_fails_its_check(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "TOLERANCE", -1.0)  # no model can pass: the check must stop the export
    args = export_args(tiny_run, tmp_path / "refused")
    with pytest.raises(export.ExportError, match="disagrees"):
        export.main(args)
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary left behind


def export_args(tiny_run, out):
    import argparse
    p = argparse.ArgumentParser()
    export.add_arguments(p)
    return p.parse_args(["--checkpoint", str(tiny_run / "ckpt" / "best.pt"), "--out", str(out),
                         "--evaluation", str(tiny_run / "eval.json"), "--corpus", str(TINY_CORPUS)])


def test_a_run_is_never_overwritten_by_accident(tmp_path):
    run = tmp_path / "r"
    nextword("train", "--corpus", TINY_CORPUS, "--out", run, "--epochs", "1", *TINY_MODEL_FLAGS)
    before = (run / "best.pt").read_bytes()
    again = nextword("train", "--corpus", TINY_CORPUS, "--out", run, "--epochs", "1", *TINY_MODEL_FLAGS, check=False)
    assert again.returncode == 2 and "holds a run already (last.pt, best.pt)" in again.stderr
    assert (run / "best.pt").read_bytes() == before
    forced = nextword("train", "--corpus", TINY_CORPUS, "--out", run, "--epochs", "1", "--seed", "9", "--force",
                      *TINY_MODEL_FLAGS)
    assert "--force: removed" in forced.stdout and (run / "best.pt").read_bytes() != before


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_saves_a_checkpoint_to_resume_from(tmp_path, sig):
    run = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "nextword", "train", "--corpus", str(TINY_CORPUS), "--out", str(run),
                             "--epochs", "500", "--patience", "1000", "--progress-seconds", "0.3", *map(str, TINY_MODEL_FLAGS)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stdout:  # progress comes by time, without asking
        lines.append(line)
        if "tokens/s eta" in line:
            break
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig and "Traceback" not in err, err
    assert f"stopped ({signal.Signals(sig).name})" in out and str(run / "last.pt") in out
    step = checkpoint.load(run / "last.pt")["progress"]["step"]
    assert step > 0
    resumed = nextword("train", "--corpus", TINY_CORPUS, "--out", run, "--epochs", "1", "--resume", *TINY_MODEL_FLAGS)
    assert f"step {step}" in resumed.stdout.splitlines()[1] or "resumed from" in resumed.stdout
