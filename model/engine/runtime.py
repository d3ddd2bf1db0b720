"""The model runtime: a model directory loaded into onnxruntime. NumPy in, NumPy out.

Knows nothing of gRPC. Checks the directory against the contract (model/engine/contract.py:
files, tensor names, sizes in the manifest) so that a broken model is a clear start-up error.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from model.engine.contract import (
    DICTIONARY,
    INT8_GRAPH,
    UNIGRAM,
    VOCAB,
    ModelError,
    check_signature,
    feed,
    graph_path,
    pads,
    read_manifest,
    rows_depend_on_each_other,
)
from model.engine.layouts import PROVIDER_NAMES
from model.engine.text import TOKENIZER_VERSION, Vocab

log = logging.getLogger("nextword.runtime")

CPU, CUDA = PROVIDER_NAMES["cpu"], PROVIDER_NAMES["cuda"]


@dataclass
class Step:
    """One model step's result for a batch: next-token logprobs and the state after it."""
    logprobs: np.ndarray  # (B, V) float32
    h: np.ndarray         # (layers, B, hidden)
    c: np.ndarray


# Same answers on every provider: TF32 matrix products on the GPU (onnxruntime's default on
# Ampere and later) move log-probabilities by ~1e-2 and can reorder the strip; full fp32 keeps
# them within 1e-4 of the CPU's (tests/service/test_providers.py checks it where CUDA runs).
PROVIDER_OPTIONS = {CUDA: {"use_tf32": "0"}}


# The int8 graph is made for the CPU's integer kernels (an older export's DynamicQuantizeLSTM
# has no CUDA or TensorRT kernel at all; today's QuantizeLinear/MatMulInteger mix with float
# work at every step, copies a GPU would pay each time): a GPU serves the fp32 graph.
ON_CPU_ONLY = "it is made for the CPU's integer kernels"
FP32_FOR_GPU = "serve an fp32 model.onnx on a GPU (nextword export writes one unless --int8-only)"


def choose_providers(wanted: str, graph: Path, available: list[str] | None = None) -> list[str]:
    """Execution providers for a setting and the graph to run; asking for one that is not
    there, or for a GPU with the int8 graph, is an error. `auto` takes CUDA where it is
    usable and the graph can use it."""
    available = ort.get_available_providers() if available is None else available
    quantised = graph.name == INT8_GRAPH
    if wanted == "auto":
        if CUDA in available and not quantised:
            return [CUDA, CPU]
        if CUDA in available:
            log.warning("provider auto: %s runs on the CPU (%s); %s", graph.name, ON_CPU_ONLY, FP32_FOR_GPU)
        return [CPU]
    name = PROVIDER_NAMES[wanted]
    if name not in available:
        raise ModelError(f"provider {wanted} ({name}) is not available in this onnxruntime build "
                         f"(available: {', '.join(available)}); install the 'gpu' extra on a machine with a GPU")
    if name == CPU:
        return [name]
    if quantised:
        raise ModelError(f"{graph.name} cannot run on provider {wanted}: {ON_CPU_ONLY}; {FP32_FOR_GPU}")
    return [name, CPU]


def with_options(providers: list[str]) -> list:
    """The providers as onnxruntime takes them, with the options above."""
    return [(name, PROVIDER_OPTIONS[name]) if name in PROVIDER_OPTIONS else name for name in providers]


def start_session(graph: Path, options: ort.SessionOptions, wanted: str) -> ort.InferenceSession:
    """A session on the providers chosen for `wanted`, the first of them started, or an error;
    `auto` settles for the CPU with a warning when CUDA is listed but cannot start."""
    providers = choose_providers(wanted, graph)
    try:
        session = open_session(graph, options, providers)
    except ModelError as e:
        if wanted != "auto" or providers[0] == CPU:
            raise
        log.warning("provider auto: %s; serving on the CPU", e)
        return open_session(graph, options, [CPU])
    if session.get_providers()[0] != providers[0]:  # onnxruntime only warns when CUDA cannot start
        if wanted != "auto":
            raise ModelError(f"provider {wanted} ({providers[0]}) did not start: onnxruntime's messages above say why "
                             f"(it needs a GPU and the CUDA 13 and cuDNN 9 libraries)")
        log.warning("provider auto: %s did not start; serving on the CPU", providers[0])
    return session


def open_session(graph: Path, options: ort.SessionOptions, providers: list[str]) -> ort.InferenceSession:
    """A session on these providers. No fallback: onnxruntime would otherwise print to
    stdout and go on with the next provider when one raises (TensorRT without its libraries)."""
    try:
        return ort.InferenceSession(str(graph), options, providers=with_options(providers), enable_fallback=0)
    except Exception as e:  # onnxruntime raises its own types for unreadable graphs and failed providers
        reason = str(e).splitlines()[0]
        raise ModelError(f"onnxruntime cannot load {graph} on {providers[0]}: "
                         f"{reason if len(reason) <= 400 else reason[:400] + '...'}") from None


class Graph:
    """One graph of the contract in an onnxruntime session: NumPy in, NumPy out."""

    def __init__(self, path: Path, layers: int, hidden: int, provider: str = "auto", threads: int = 1,
                 one_at_a_time: bool = False, pads: bool = False):
        self.layers, self.hidden = layers, hidden
        self.pads = pads  # negative token ids are padding (model.engine.contract.pads)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = start_session(path, options, provider)
        self.provider = self.session.get_providers()[0]
        self.graph = path.name
        self.one_at_a_time = one_at_a_time  # an older int8 graph: model.engine.contract.rows_depend_on_each_other
        check_signature(self.session, path)

    def zero_state(self, batch: int = 1) -> tuple[np.ndarray, np.ndarray]:
        shape = (self.layers, batch, self.hidden)
        return np.zeros(shape, np.float32), np.zeros(shape, np.float32)

    def run(self, tokens: np.ndarray, h: np.ndarray, c: np.ndarray) -> Step:
        """Feed tokens (B, T) from state (h, c); thread-safe, releases the GIL while it runs."""
        if self.one_at_a_time and tokens.size > 1:
            return self._run_one_at_a_time(tokens, h, c)
        logprobs, hn, cn = self.session.run(None, feed(tokens, h, c))
        return Step(logprobs, hn, cn)

    def _run_one_at_a_time(self, tokens: np.ndarray, h: np.ndarray, c: np.ndarray) -> Step:
        """Each row, token by token (see model.engine.contract.rows_depend_on_each_other)."""
        rows = []
        for b in range(tokens.shape[0]):
            hb, cb = h[:, b : b + 1], c[:, b : b + 1]
            for t in range(tokens.shape[1]):
                logprobs, hb, cb = self.session.run(None, feed(tokens[b : b + 1, t : t + 1], hb, cb))
            rows.append((logprobs, hb, cb))
        return Step(*(np.concatenate(parts, axis=axis) for parts, axis in zip(zip(*rows), (0, 1, 1))))

    def warm_up(self) -> None:
        """Run once at each batch shape class so the first real call is not slow."""
        for batch, steps in ((1, 1), (4, 1), (1, 8)):
            h, c = self.zero_state(batch)
            self.run(np.ones((batch, steps), np.int64), h, c)


class Runtime(Graph):
    """A model directory in onnxruntime, checked against the contract: the one loader that
    serving, `nextword evaluate --model-dir` and `nextword bench` share."""

    def __init__(self, model_dir: str | Path, provider: str = "auto", threads: int = 1, int8: bool = False):
        self.model_dir = Path(model_dir)
        self.manifest = read_manifest(self.model_dir)
        try:
            self.vocab = Vocab.load(self.model_dir / VOCAB)
        except (ValueError, UnicodeDecodeError) as e:
            raise ModelError(f"bad vocab.txt: {e}") from None
        sizes = self.manifest.get("sizes", {})
        layers, hidden = int(sizes.get("layers", 0)), int(sizes.get("hidden", 0))
        if not layers or not hidden:
            raise ModelError("manifest.json lacks sizes.layers / sizes.hidden")
        if self.manifest.get("tokenizer_version") != TOKENIZER_VERSION:
            raise ModelError(f"model needs tokenizer version {self.manifest.get('tokenizer_version')}, "
                             f"this server has {TOKENIZER_VERSION}")
        if len(self.vocab) != sizes.get("vocab"):
            raise ModelError(f"vocab.txt has {len(self.vocab)} tokens, the manifest says {sizes.get('vocab')}")
        self.dictionary_file = self._dictionary_file()
        self.unigram_file = self._unigram_file()
        path = graph_path(self.model_dir, int8)
        super().__init__(path, layers, hidden, provider, threads, rows_depend_on_each_other(path, self.manifest),
                         pads(path, self.manifest))

    def _dictionary_file(self) -> Path | None:
        """The main dictionary the manifest declares (checked: its number of words), or None."""
        declared = self.manifest.get("dictionary")
        if not declared:
            return None
        path = self.model_dir / DICTIONARY
        with open(path, "rb") as f:
            lines = sum(1 for _ in f)
        if lines != declared.get("words"):
            raise ModelError(f"{DICTIONARY} has {lines} words, the manifest says {declared.get('words')}")
        return path

    def _unigram_file(self) -> Path | None:
        """The training split's counts the manifest declares (checked: a count per token), or None."""
        if not self.manifest.get("unigram"):
            return None
        path = self.model_dir / UNIGRAM
        with open(path, "rb") as f:
            lines = sum(1 for _ in f)
        if lines != len(self.vocab):
            raise ModelError(f"{UNIGRAM} has {lines} counts, the vocabulary {len(self.vocab)} tokens")
        return path

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", self.model_dir.name))

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", "unknown"))
