"""The model directory: the one contract between training (model/) and serving (service/).

    <model-dir>/
      model.onnx        fp32 graph            (at least one of the two graphs)
      model.int8.onnx   int8, dynamically quantised
      vocab.txt         one token per line, line number = id
      manifest.json     name, version, sizes, tokenizer version, corpus, evaluation
      dictionary.txt    the main dictionary, one "word<TAB>zipf" a line (when the manifest
                        declares one: model/engine/dictionary.py)
      unigram.txt       each vocabulary token's count in the training split, one a line,
                        line number = id (when the manifest declares it: the personal strip's
                        P_corpus, model/engine/personal.py)

ONNX signature: tokens (B, T) int64, h0/c0 (layers, B, hidden) float32 in;
logprobs (B, V), hn/cn out. Torch-free: export, the runtime and evaluate share it.
docs/DESIGN.md explains the choices.
"""
from __future__ import annotations

import json
from pathlib import Path

from model.engine.errors import UserError

INPUTS = ("tokens", "h0", "c0")
OUTPUTS = ("logprobs", "hn", "cn")
FP32_GRAPH, INT8_GRAPH = "model.onnx", "model.int8.onnx"
VOCAB, MANIFEST, CARD, DICTIONARY, UNIGRAM = "vocab.txt", "manifest.json", "MODEL_CARD.md", "dictionary.txt", "unigram.txt"
SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "pretrained"  # the model `nextword serve` ships with


class ModelError(UserError):
    """The model directory is missing, incomplete or does not meet the contract."""


def feed(tokens, h0, c0) -> dict:
    """The inputs of one onnxruntime run, by their contract names."""
    return dict(zip(INPUTS, (tokens, h0, c0)))


PER_ROW = "per-row"  # manifest "int8_scheme" of an int8 graph whose rows are quantised each on its own


def pads(graph: Path, manifest: dict) -> bool:
    """Does the graph take a negative token id as padding (the row's state goes through that
    step unchanged)? Today's int8 graph does, so contexts of different lengths share a call."""
    return graph.name == INT8_GRAPH and manifest.get("int8_scheme") == PER_ROW


def rows_depend_on_each_other(graph: Path, manifest: dict) -> bool:
    """An int8 graph of an older export (onnxruntime's dynamic quantisation: one activation
    scale per call, for all rows and steps) answers a row differently with other rows beside
    it, and with its tokens split otherwise: it is fed one row and one token per call. An
    int8 graph of today's export (manifest "int8_scheme": "per-row", model/export/quantize.py)
    and every fp32 graph answer each row on its own, in batches and sequences."""
    return graph.name == INT8_GRAPH and manifest.get("int8_scheme") != PER_ROW


def graph_path(model_dir: Path, int8: bool) -> Path:
    """The graph to load: the one asked for; a directory that ships only the int8 graph
    (the default model does, to stay small) serves it either way."""
    fp32, quantised = model_dir / FP32_GRAPH, model_dir / INT8_GRAPH
    if int8 or (not fp32.is_file() and quantised.is_file()):
        path = quantised
    else:
        path = fp32
    if not path.is_file():
        raise ModelError(f"model directory {model_dir} has no {path.name}")
    return path


def read_manifest(model_dir: Path) -> dict:
    """manifest.json of a model directory, after checking the directory holds its files."""
    try:
        if not model_dir.is_dir():
            raise ModelError(f"model directory not found: {model_dir}")
        if not (model_dir / FP32_GRAPH).is_file() and not (model_dir / INT8_GRAPH).is_file():
            raise ModelError(f"model directory {model_dir} has no {FP32_GRAPH} (nor {INT8_GRAPH})")
        for name in (VOCAB, MANIFEST):
            if not (model_dir / name).is_file():
                raise ModelError(f"model directory {model_dir} has no {name}")
        manifest = json.loads((model_dir / MANIFEST).read_text())
    except OSError as e:
        raise ModelError(f"cannot read model directory {model_dir}: {e.strerror}") from None
    except ValueError as e:
        raise ModelError(f"{model_dir / MANIFEST} is not valid JSON: {e}") from None
    if not isinstance(manifest, dict):
        raise ModelError(f"{model_dir / MANIFEST} is not a JSON object")
    for block, name in (("dictionary", DICTIONARY), ("unigram", UNIGRAM)):
        if manifest.get(block) and not (model_dir / name).is_file():
            raise ModelError(f"model directory {model_dir} has no {name}, which its manifest declares")
    return manifest


def check_signature(session, graph: Path) -> None:
    """An onnxruntime session's input and output names must be the contract's."""
    names_in = tuple(i.name for i in session.get_inputs())
    names_out = tuple(o.name for o in session.get_outputs())
    if names_in != INPUTS or names_out != OUTPUTS:
        raise ModelError(f"{graph.name} has inputs {names_in} and outputs {names_out}, expected {INPUTS} and {OUTPUTS}")
