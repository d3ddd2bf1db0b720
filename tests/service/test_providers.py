"""Execution providers: which one a graph gets (checked everywhere), and, where CUDA is
usable, the same answers on it as on the CPU: log-probabilities within 1e-4, the same
top-10, and a real server on it answering as one on the CPU does.

The GPU checks run on an fp32 graph (the int8 one runs on the CPU only): the model in
$NEXTWORD_GPU_TEST_MODEL (scripts/gpu-check points it at an fp32 export of the shipped
checkpoint), else the tiny model the tests train."""
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, nextword
from helpers import CUDA_USABLE, ServerProcess
from model.data import encode_messages, load_text_files
from model.engine.contract import FP32_GRAPH, INT8_GRAPH, ModelError
from model.engine.runtime import Runtime, choose_providers
from service.client import NextWordClient

CPU, CUDA, TENSORRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
FP32, INT8 = Path("model") / FP32_GRAPH, Path("model") / INT8_GRAPH
GPU_BUILD = [TENSORRT, CUDA, CPU]  # what onnxruntime-gpu lists
GPU_BUILD_SITE = ROOT / ".venv" / "onnxruntime-gpu"  # scripts/dev puts onnxruntime-gpu there
needs_cuda = pytest.mark.skipif(not CUDA_USABLE, reason="CUDA is not usable here (no GPU, or onnxruntime without "
                                                        "CUDA): the GPU checks run where `pip install -e '.[gpu]'` finds one")


@pytest.mark.parametrize("wanted, graph, available, chosen", [
    ("auto", FP32, GPU_BUILD, [CUDA, CPU]),
    ("auto", INT8, GPU_BUILD, [CPU]),
    ("auto", FP32, [CPU], [CPU]),
    ("cuda", FP32, GPU_BUILD, [CUDA, CPU]),
    ("tensorrt", FP32, GPU_BUILD, [TENSORRT, CPU]),
    ("cpu", INT8, GPU_BUILD, [CPU]),
])
def test_the_providers_a_graph_gets(wanted, graph, available, chosen):
    assert choose_providers(wanted, graph, available) == chosen


@pytest.mark.parametrize("wanted, graph, available, message", [
    ("cuda", INT8, GPU_BUILD, "model.int8.onnx cannot run on provider cuda: it is made for the CPU's integer kernels; "
                              "serve an fp32 model.onnx on a GPU"),
    ("tensorrt", INT8, GPU_BUILD, "model.int8.onnx cannot run on provider tensorrt"),
    ("cuda", FP32, [CPU], "provider cuda (CUDAExecutionProvider) is not available"),
])
def test_a_provider_that_cannot_run_the_graph_is_refused(wanted, graph, available, message):
    with pytest.raises(ModelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        choose_providers(wanted, graph, available)


# onnxruntime-gpu run on this machine, where CUDA is not usable (as the GPU image on a host without a GPU)
GPU_BUILD_ENV = {**os.environ, "PYTHONPATH": str(GPU_BUILD_SITE)}
needs_gpu_build_without_gpu = pytest.mark.skipif(
    CUDA_USABLE or not (GPU_BUILD_SITE / "onnxruntime").is_dir(),
    reason="needs onnxruntime-gpu in .venv/onnxruntime-gpu (scripts/dev) on a machine without a usable GPU")


@needs_gpu_build_without_gpu
@pytest.mark.parametrize("provider, message", [
    ("cuda", "nextword serve: error: provider cuda (CUDAExecutionProvider) did not start: onnxruntime's messages above"),
    ("tensorrt", "on TensorrtExecutionProvider: "),
])
def test_the_gpu_build_without_a_gpu_refuses_a_gpu_provider_in_one_line(provider, message, tiny_model):
    proc = nextword("serve", "--model-dir", tiny_model, "--provider", provider, "--host", "127.0.0.1", "--grpc-port", "0",
                    "--metrics-port", "-1", check=False, env=GPU_BUILD_ENV)
    said = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and message in said[-1], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""  # onnxruntime's fallback would print "Falling back"


@needs_gpu_build_without_gpu
def test_the_gpu_build_without_a_gpu_serves_auto_on_the_cpu(tiny_model):
    server = ServerProcess("--model-dir", tiny_model, env={"PYTHONPATH": str(GPU_BUILD_SITE)})
    try:
        with NextWordClient(server.address) as client:
            assert client.model_info().execution_provider == CPU
            assert client.predict("how are yo")
    finally:
        log = server.stop()
    assert "provider auto: CUDAExecutionProvider did not start; serving on the CPU" in log


@pytest.fixture(scope="module")
def gpu_model(request) -> Path:
    chosen = os.environ.get("NEXTWORD_GPU_TEST_MODEL")
    model = Path(chosen) if chosen else request.getfixturevalue("tiny_model")
    assert (model / FP32_GRAPH).is_file(), f"{model} has no {FP32_GRAPH} to run on a GPU"
    return model


def contexts(runtime: Runtime, n: int = 32, steps: int = 12) -> np.ndarray:
    from conftest import TINY_CORPUS

    seqs = encode_messages(load_text_files([str(TINY_CORPUS)]).splits["train"], runtime.vocab)
    chosen = sorted(seqs, key=len, reverse=True)[:n]
    return np.stack([np.resize(s, steps) for s in chosen]).astype(np.int64)


@needs_cuda
def test_cuda_log_probabilities_match_the_cpu(gpu_model):
    cpu, cuda = Runtime(gpu_model, "cpu"), Runtime(gpu_model, "cuda")
    assert cuda.provider == CUDA
    tokens = contexts(cpu)
    h, c = cpu.zero_state(len(tokens))
    want, got = cpu.run(tokens, h, c).logprobs, cuda.run(tokens, h, c).logprobs
    assert np.abs(want - got).max() <= 1e-4
    assert np.array_equal(np.argsort(-want, axis=1)[:, :10], np.argsort(-got, axis=1)[:, :10])


@needs_cuda
def test_a_server_on_cuda_answers_as_one_on_the_cpu(gpu_model):
    servers = {p: ServerProcess("--model-dir", gpu_model, "--provider", p) for p in ("cpu", "cuda")}
    try:
        with NextWordClient(servers["cpu"].address) as on_cpu, NextWordClient(servers["cuda"].address) as on_gpu:
            assert on_gpu.model_info().execution_provider == CUDA
            for text in ("how are yo", "what are you doing ", "see you tomorow "):
                assert on_gpu.predict(text, k=10) == on_cpu.predict(text, k=10)
    finally:
        for server in servers.values():
            server.stop()


@needs_cuda
def test_tensorrt_serves_or_is_a_one_line_start_up_error(gpu_model):
    """TensorRT needs its own libraries (libnvinfer), which onnxruntime-gpu does not bring:
    without them the server must say so and stop, not fall back quietly to another provider."""
    try:
        server = ServerProcess("--model-dir", gpu_model, "--provider", "tensorrt")
    except AssertionError:  # it did not start: the reason is checked below
        proc = nextword("serve", "--model-dir", gpu_model, "--provider", "tensorrt", "--grpc-port", "0",
                        "--metrics-port", "-1", check=False)
        said = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2 and "Traceback" not in proc.stderr and "Falling back" not in proc.stdout
        assert "on TensorrtExecutionProvider" in said[-1], proc.stderr
        return
    try:
        with NextWordClient(server.address) as client:
            assert client.model_info().execution_provider == TENSORRT
    finally:
        server.stop()
