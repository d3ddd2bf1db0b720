"""int8 graphs: onnxruntime dynamic quantisation of the LSTM and the output layer, with
the input embedding kept tied to the output matrix so it is stored once.

Three steps, each for a reason:
1. fold constants (onnxruntime's basic graph optimisation, saved as a model): the exported
   LSTM takes its weights through Slice/Concat nodes (gate order), and the quantiser only
   quantises weights that are plain initialisers;
2. quantise the LSTM and MatMul weights to int8 (DynamicQuantizeLSTM, MatMulInteger);
3. re-tie the embedding: the output layer's int8 matrix (E, V) also serves the input
   lookup (Gather along its columns, dequantise, transpose), so the fp32 embedding
   (V, E) is dropped instead of being stored a second time.
"""
from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

from model.engine.contract import INPUTS


def fold_constants(src: Path, dst: Path) -> None:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(dst)
    options.log_severity_level = 3
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])


def retie_embedding(model) -> bool:
    """Replace the fp32 embedding lookup by a lookup in the int8 output matrix (see above).
    Returns False (graph unchanged) when the graph does not have that shape."""
    import onnx
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    lookup = next((n for n in model.graph.node if n.op_type == "Gather" and n.input[0] in inits
                   and n.input[1] == INPUTS[0]), None)
    if lookup is None:
        return False
    embed = numpy_helper.to_array(inits[lookup.input[0]])                              # (V, E)
    for name, init in inits.items():
        scale, zero = name.replace("_quantized", "_scale"), name.replace("_quantized", "_zero_point")
        if not name.endswith("_quantized") or scale not in inits or zero not in inits:
            continue
        q = numpy_helper.to_array(init)                                                   # (E, V) int8
        if q.shape != embed.shape[::-1]:
            continue
        s, z = float(numpy_helper.to_array(inits[scale])), int(numpy_helper.to_array(inits[zero]))
        if np.abs((q.astype(np.float32) - z) * s - embed.T).max() > s:  # not this matrix
            continue
        out = lookup.output[0]
        nodes = [helper.make_node("Gather", [name, INPUTS[0]], [out + "_q"], axis=1),             # (E, B, T)
                 helper.make_node("DequantizeLinear", [out + "_q", scale, zero], [out + "_t"]),
                 helper.make_node("Transpose", [out + "_t"], [out], perm=[1, 2, 0])]             # (B, T, E)
        position = list(model.graph.node).index(lookup)
        model.graph.node.remove(lookup)
        for offset, node in enumerate(nodes):
            model.graph.node.insert(position + offset, node)
        model.graph.initializer.remove(inits[lookup.input[0]])
        onnx.checker.check_model(model)
        return True
    return False


@contextlib.contextmanager
def no_log_line(containing: str):
    """Drop one expected line from the root logger (onnxruntime's quantiser logs there)."""
    def keep(record):
        return containing not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def quantize(src: Path, dst: Path) -> bool:
    """Write the int8 graph of src to dst; True when the embedding is stored once."""
    import onnx  # the 'train' extra
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        folded, quantised = Path(tmp) / "folded.onnx", Path(tmp) / "int8.onnx"
        fold_constants(src, folded)  # which is the pre-processing the quantiser's log line asks for
        with no_log_line("pre-processing before quantization"):
            quantize_dynamic(str(folded), str(quantised), weight_type=QuantType.QInt8, op_types_to_quantize=["LSTM", "MatMul"])
        model = onnx.load(str(quantised))
    tied = retie_embedding(model)
    onnx.save(model, str(dst))
    return tied
