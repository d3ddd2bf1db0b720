"""The shipped default model: loads in onnxruntime without torch and matches its manifest."""
import json
import subprocess
import sys

from conftest import ROOT, SHIPPED_MODEL

WITHOUT_TORCH = """
import json, sys
sys.modules["torch"] = None  # any import of torch now fails
import numpy as np
from model.engine.runtime import Runtime
from model.engine.suggest import Suggester
r = Runtime(sys.argv[1], "cpu")
h, c = r.zero_state(1)
ids = [1] + r.vocab.encode_text("how are")
step = r.run(np.array([ids], np.int64), h, c)
print(json.dumps({
    "inputs": [[i.name, i.shape] for i in r.session.get_inputs()],
    "outputs": [[o.name, o.shape] for o in r.session.get_outputs()],
    "vocab": len(r.vocab), "logprobs": list(step.logprobs.shape), "sum": float(np.exp(step.logprobs).sum()),
    "strip": [s.text for s in Suggester(r.vocab).strip(step.logprobs[0], "how are ", "yo", 3)],
}))
"""


def test_shipped_model_serves_without_torch_and_matches_manifest():
    proc = subprocess.run([sys.executable, "-c", WITHOUT_TORCH, str(SHIPPED_MODEL)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    manifest = json.loads((SHIPPED_MODEL / "manifest.json").read_text())
    sizes = manifest["sizes"]
    assert got["vocab"] == sizes["vocab"] == len((SHIPPED_MODEL / "vocab.txt").read_text().splitlines())
    assert got["inputs"][0][0] == "tokens" and got["inputs"][1][1][0] == sizes["layers"] and got["inputs"][1][1][2] == sizes["hidden"]
    assert [o[0] for o in got["outputs"]] == ["logprobs", "hn", "cn"]
    assert got["logprobs"] == [1, sizes["vocab"]] and abs(got["sum"] - 1) < 1e-3
    assert got["strip"][0] == "you"
    assert manifest["tokenizer_version"] and manifest["corpus"]["fingerprint"]
    assert {"lstm", "trigram_kn"} <= set(manifest["evaluation"])


def test_shipped_model_directory_is_small_enough():
    files = {p.name: p.stat().st_size for p in SHIPPED_MODEL.iterdir()}
    manifest = json.loads((SHIPPED_MODEL / "manifest.json").read_text())
    assert set(manifest["graphs"]) <= set(files) and {"vocab.txt", "manifest.json", "MODEL_CARD.md"} <= set(files)
    assert sum(files.values()) <= 10 * 1024 * 1024


def test_the_shipped_int8_graph_passed_its_checks_and_was_scored_itself():
    manifest = json.loads((SHIPPED_MODEL / "manifest.json").read_text())
    checks = manifest["export_checks"]
    assert manifest["graphs"] == ["model.int8.onnx"] and manifest["int8_scheme"] == "per-row"
    assert checks["int8_top1_agreement"] >= 0.98 and checks["fp32_ksr_3"] - checks["int8_ksr_3"] <= 0.002
    assert checks["int8_rows_alone_vs_batch"] <= 1e-6
    assert manifest["blocklist"]["in_vocabulary"] >= 0
    assert manifest["evaluation"]["scored_by"] == "model.int8.onnx"
