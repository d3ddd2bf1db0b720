"""`torchrun --nproc_per_node 2 nextword train`: DistributedDataParallel on 2 CPU processes (gloo)."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT, TINY_CORPUS, TINY_MODEL_FLAGS
from model.train import checkpoint

pytestmark = pytest.mark.slow  # see pyproject.toml


def test_two_processes_train_as_well_as_one(tmp_path, tiny_run):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "nextword", "train", "--corpus", str(TINY_CORPUS), "--out", str(tmp_path / "ddp"),
           "--epochs", "2", "--seed", "3", *TINY_MODEL_FLAGS]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=400, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 process(es)" in proc.stdout
    ddp = checkpoint.load(tmp_path / "ddp" / "best.pt")["progress"]
    single = checkpoint.load(tiny_run / "ckpt" / "best.pt")["progress"]
    assert ddp["step"] == single["step"]  # same global batches, same number of optimiser steps
    # same quality: validation perplexity within 5% of the single-process run's
    assert abs(ddp["best_valid_ppl"] - single["best_valid_ppl"]) / single["best_valid_ppl"] < 0.05, (ddp, single)
