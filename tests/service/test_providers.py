"""Same answers on every execution provider: where CUDA is usable, its log-probabilities
match the CPU's within 1e-4 with the same top-10, and a real server serves on it."""
import numpy as np
import pytest

from conftest import SHIPPED_MODEL
from helpers import ServerProcess
from model.data import encode_messages, load_text_files
from service.client import NextWordClient
from service.runtime import Runtime, choose_providers

CUDA = "CUDAExecutionProvider" in choose_providers("auto")
pytestmark = pytest.mark.skipif(not CUDA, reason="CUDA is not usable here (no GPU, or onnxruntime without CUDA): "
                                                 "the GPU checks run where `pip install -e '.[gpu]'` finds one")


def contexts(runtime: Runtime, n: int = 32, steps: int = 12) -> np.ndarray:
    from conftest import TINY_CORPUS

    seqs = encode_messages(load_text_files([str(TINY_CORPUS)]).splits["train"], runtime.vocab)
    chosen = sorted(seqs, key=len, reverse=True)[:n]
    return np.stack([np.resize(s, steps) for s in chosen]).astype(np.int64)


def test_cuda_log_probabilities_match_the_cpu():
    cpu, cuda = Runtime(SHIPPED_MODEL, "cpu"), Runtime(SHIPPED_MODEL, "cuda")
    assert cuda.provider == "CUDAExecutionProvider"
    tokens = contexts(cpu)
    h, c = cpu.zero_state(len(tokens))
    want, got = cpu.run(tokens, h, c).logprobs, cuda.run(tokens, h, c).logprobs
    assert np.abs(want - got).max() <= 1e-4
    assert np.array_equal(np.argsort(-want, axis=1)[:, :10], np.argsort(-got, axis=1)[:, :10])


def test_a_server_on_cuda_answers_as_on_the_cpu(client):
    server = ServerProcess("--model-dir", SHIPPED_MODEL, "--provider", "cuda")
    try:
        with NextWordClient(server.address) as on_gpu:
            assert on_gpu.model_info().execution_provider == "CUDAExecutionProvider"
            for text in ("how are yo", "what are you doing ", "see you tomorow "):
                assert on_gpu.predict(text, k=10) == client.predict(text, k=10)
    finally:
        server.stop()
