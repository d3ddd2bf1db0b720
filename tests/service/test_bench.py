"""The benchmark's in-process parts: the model-alone table and the provider agreement line
(the throughput table's figures are only meaningful on a quiet machine: never asserted)."""
import argparse

from model.engine.runtime import Runtime
from service.tools import bench


def test_the_model_table_times_every_batch_size_on_every_provider(capsys):
    bench.model_rows(argparse.Namespace(model_batches="1,3", model_dir=None), ["cpu"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("model alone (") and "model.int8.onnx" in lines[0]
    assert lines[1].split() == ["provider", "batch", "1", "batch", "3", "64", "/", "(64", "x", "1)", "8", "tokens"]
    name, *figures = lines[2].split()
    assert name == "cpu" and len(figures) == 4 and all(float(f.replace(",", "")) > 0 for f in figures)


def test_agreement_finds_where_two_graphs_answer_differently(tiny_model):
    fp32, int8 = Runtime(tiny_model, "cpu"), Runtime(tiny_model, "cpu", int8=True)
    assert bench.agreement(fp32, fp32) == (0.0, 0, 32)
    diff, differ, contexts = bench.agreement(fp32, int8)
    assert 0 < diff < 5 and contexts == 32 and 0 <= differ <= contexts
