"""The int8 graph: each row quantised on its own, so a context's answer never depends on what
it is batched with, and a sequence runs in one call.

The graph is built here, node by node, from the model's weights (not by onnxruntime's
quantiser, whose dynamic quantisation takes one scale per call for all rows). It keeps the
contract's signature (tokens (B, T), h0, c0 -> logprobs, hn, cn) and computes:

    x_t    the token's column of the tied output matrix, int8, with that token's scale:
           already quantised per row, no work at run time
    gates  x_t W (int8 x int8, exact in int32) and h R, h quantised with the fixed scale
           1/127 (h = o tanh(c) lies in (-1, 1)): no data-dependent scale at all
    h, c   the LSTM cell in float (sigmoid, tanh), one Scan step per token
    y      h P (+ bias), h at its fixed scale again
    logits y quantised per row (its own max|y| / 127), times the tied output matrix, + bias

Weights are int8 with one scale per output column (symmetric). Integer products are exact
and every float operation is row by row, so a row's log-probabilities are the same alone
and in any batch (export checks it: `rows_identical`). A negative token id is padding: the
row's state goes through that step unchanged, so contexts of different lengths share a call
(right-padded) and each still gets exactly its own answer. The tied matrix is stored once and
serves both the input lookup and the output layer: the directory stays near 8 MB.

`graph(weights, int8=False)` builds the same graph in float32: the reference the int8 one
is checked against when no torch export is at hand.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, checker, helper, numpy_helper

from model.engine.contract import INPUTS, OUTPUTS

OPSET = 17
H_SCALE = 1.0 / 127.0        # h lies in (-1, 1): a fixed scale, no dynamic quantisation
ZERO = 128                   # uint8 activations are int8 + 128 (onnxruntime's fast u8 x s8 kernels)


@dataclass
class Weights:
    """An LSTM language model's weights, in torch's layout (gates i, f, g, o)."""
    embedding: np.ndarray        # (V, E), tied with the output layer
    w_ih: list[np.ndarray]       # per layer (4H, input)
    w_hh: list[np.ndarray]       # per layer (4H, H)
    bias: list[np.ndarray]       # per layer (4H,): b_ih + b_hh
    proj_w: np.ndarray           # (E, H)
    proj_b: np.ndarray           # (E,)
    out_b: np.ndarray            # (V,)

    @property
    def layers(self) -> int:
        return len(self.w_hh)

    @property
    def hidden(self) -> int:
        return self.w_hh[0].shape[1]


def weights_of(lm) -> Weights:
    """The weights of a torch LSTMLM (model/train/lm.py)."""
    state = {k: v.detach().float().numpy() for k, v in lm.state_dict().items()}
    layers = lm.cfg.layers
    return Weights(state["embed.weight"], [state[f"lstm.weight_ih_l{n}"] for n in range(layers)],
                   [state[f"lstm.weight_hh_l{n}"] for n in range(layers)],
                   [state[f"lstm.bias_ih_l{n}"] + state[f"lstm.bias_hh_l{n}"] for n in range(layers)],
                   state["proj.weight"], state["proj.bias"], state["out_bias"])


def iofg(w: np.ndarray) -> np.ndarray:
    """Gate rows from torch's order (i, f, g, o) to (i, o, f, g): the three sigmoids first."""
    i, f, g, o = np.split(w, 4, axis=0)
    return np.concatenate([i, o, f, g], axis=0)


def torch_order(w: np.ndarray) -> np.ndarray:
    """Gate rows from (i, o, f, g), this graph's order and ONNX's LSTM's, back to torch's (i, f, g, o)."""
    i, o, f, g = np.split(w, 4, axis=0)
    return np.concatenate([i, f, g, o], axis=0)


def per_column(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """w (K, N) as int8 with a symmetric scale per column: (q, scale). Weights that are int8
    on one scale already (a checkpoint recovered from an older int8 graph) keep that grid
    exactly: quantising them again per column would round every one of them a second time."""
    whole = float(np.abs(w).max()) / 127.0 or 1.0
    if np.abs(w / whole - np.rint(w / whole)).max() < 1e-3:
        scale = np.full(w.shape[1], whole)
    else:
        scale = np.abs(w).max(axis=0) / 127.0
        scale[scale == 0] = 1.0
    return np.clip(np.rint(w / scale), -127, 127).astype(np.int8), scale.astype(np.float32)


class Builder:
    """Nodes and initialisers of one graph; names are made unique by a counter."""

    def __init__(self, prefix: str):
        self.nodes, self.inits, self.prefix, self.n = [], [], prefix, 0

    def name(self, hint: str) -> str:
        self.n += 1
        return f"{self.prefix}{hint}_{self.n}"

    def const(self, value, hint: str = "c") -> str:
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str = "", outputs: int = 1, **attrs):
        names = [self.name(hint or op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, **attrs))
        return names[0] if outputs == 1 else names


class Graph:
    """The graph for one set of weights, int8 or float32 (see the module doc)."""

    def __init__(self, w: Weights, int8: bool):
        self.w, self.int8 = w, int8
        self.top = Builder("t_")
        c = self.top.const
        self.zero = self.zero16 = self.h_scale = self.axis1 = None  # int8 only
        if int8:
            self.zero, self.zero16 = c(np.array(ZERO, np.uint8), "zero"), c(np.array(ZERO, np.int16), "zero16")
            self.h_scale = c(np.array(H_SCALE, np.float32), "h_scale")
            self.axis1 = c(np.array([1], np.int64), "axis1")
        self.axis0, self.axis2 = c(np.array([0], np.int64), "axis0"), c(np.array([2], np.int64), "axis2")
        self.table = self.matrix(w.embedding.T, "table")  # (E, V): the input lookup and the output layer
        self.layer_weights = [(self.matrix(iofg(w.w_ih[n]).T, f"w_ih{n}"), self.matrix(iofg(w.w_hh[n]).T, f"w_hh{n}"),
                               c(iofg(w.bias[n]).astype(np.float32), f"bias{n}")) for n in range(w.layers)]
        self.split = c(np.array([3 * w.hidden, w.hidden], np.int64), "split")

    def matrix(self, w: np.ndarray, hint: str):
        """A weight matrix (K, N): (int8 values, per-column scales) or (float32 values, None)."""
        if not self.int8:
            return self.top.const(w.astype(np.float32), hint), None
        q, scale = per_column(w)
        return self.top.const(q, hint + "_q"), self.top.const(scale, hint + "_scale")

    def times(self, g: Builder, x: str, matrix, x_scale: str | None) -> str:
        """x (M, K) float times a weight matrix. int8: x quantised with `x_scale` (a scalar, or
        (M, 1) per row), u8 x s8 in int32, then the scales applied."""
        if not self.int8:
            return g.op("MatMul", [x, matrix[0]])
        if x_scale is self.h_scale:
            xq = g.op("QuantizeLinear", [x, x_scale, self.zero])
        else:
            xq = self.to_u8(g, g.op("Round", [g.op("Div", [x, x_scale])]))
        return self.product(g, xq, matrix, x_scale)

    def to_u8(self, g: Builder, values: str) -> str:
        """int8-range values (integers, as int8 or float) as uint8: + ZERO, which MatMulInteger takes off."""
        return g.op("Cast", [g.op("Add", [g.op("Cast", [values], to=TensorProto.INT16), self.zero16])], to=TensorProto.UINT8)

    def product(self, g: Builder, xq: str, matrix, x_scale: str) -> str:
        """xq (u8) times the int8 matrix, exact in int32, back in float with both scales."""
        values, scale = matrix
        product = g.op("Cast", [g.op("MatMulInteger", [xq, values, self.zero])], to=TensorProto.FLOAT)
        return g.op("Mul", [g.op("Mul", [product, x_scale]), scale])

    def embed_times_w(self, flat_tokens: str) -> str:
        """The first layer's x W for every token at once: (B*T, 4H). The embedding column is
        int8 already, with its token's scale: nothing to quantise."""
        g, (values, scale) = self.top, self.table
        if not self.int8:
            x = g.op("Gather", [g.op("Transpose", [values], perm=[1, 0]), flat_tokens], axis=0)
            return g.op("MatMul", [x, self.layer_weights[0][0][0]])
        column = g.op("Transpose", [g.op("Gather", [values, flat_tokens], axis=1)], perm=[1, 0])   # (BT, E) int8
        token_scale = g.op("Unsqueeze", [g.op("Gather", [scale, flat_tokens]), self.axis1])
        return self.product(g, self.to_u8(g, column), self.layer_weights[0][0], token_scale)

    def cell(self, g: Builder, n: int, x_w: str, h: str, c: str) -> tuple[str, str]:
        """One LSTM step of layer n, from x W (already computed) and the state."""
        _, w_hh, bias = self.layer_weights[n]
        gates = g.op("Add", [g.op("Add", [x_w, self.times(g, h, w_hh, self.h_scale)]), bias])
        sigmoid, candidate = g.op("Split", [gates, self.split], outputs=2, axis=1)
        i, o, f = g.op("Split", [g.op("Sigmoid", [sigmoid])], outputs=3, axis=1)
        c_new = g.op("Add", [g.op("Mul", [f, c]), g.op("Mul", [i, g.op("Tanh", [candidate])])])
        return g.op("Mul", [o, g.op("Tanh", [c_new])]), c_new

    def step_body(self) -> helper.GraphProto:
        """The Scan body: every layer's state in, x W of the first layer for this token."""
        body, w = Builder("s_"), self.w
        hs = [f"h{n}_in" for n in range(w.layers)]
        cs = [f"c{n}_in" for n in range(w.layers)]
        x_w, new_h, new_c = "xw_t", [], []
        for n in range(w.layers):
            if n:
                x_w = self.times(body, new_h[-1], self.layer_weights[n][0], self.h_scale)
            h, c = self.cell(body, n, x_w, hs[n], cs[n])
            new_h.append(h)
            new_c.append(c)
        # a padding position (token id < 0) leaves the row's state as it was
        outputs = [body.op("Where", ["real_t", v, old], f"{kind}{n}_out") for kind, vs, olds in (("h", new_h, hs), ("c", new_c, cs))
                   for n, (v, old) in enumerate(zip(vs, olds))]
        state = lambda name, size: helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", size])  # noqa: E731
        inputs = [state(x, w.hidden) for x in hs + cs] + [state("xw_t", 4 * w.hidden),
                                                           helper.make_tensor_value_info("real_t", TensorProto.BOOL, ["batch", 1])]
        return helper.make_graph(body.nodes, "step", inputs, [state(x, w.hidden) for x in outputs], body.inits)

    def build(self):
        g, w = self.top, self.w
        H, L, V = w.hidden, w.layers, w.embedding.shape[0]
        zero_id = g.const(np.array(0, np.int64), "zero_id")
        tokens = g.op("Max", [INPUTS[0], zero_id])  # padding (< 0) reads id 0 ...
        real = g.op("GreaterOrEqual", [INPUTS[0], zero_id])
        real = g.op("Unsqueeze", [g.op("Transpose", [real], perm=[1, 0]), self.axis2])  # ... and is masked out: (T, B, 1)
        flat = g.op("Reshape", [tokens, g.const(np.array([-1], np.int64), "flat")])
        shape = g.op("Concat", [g.op("Shape", [INPUTS[0]]), g.const(np.array([4 * H], np.int64), "gates")], axis=0)
        x_w = g.op("Transpose", [g.op("Reshape", [self.embed_times_w(flat), shape])], perm=[1, 0, 2])  # (T, B, 4H)
        h0 = g.op("Split", [INPUTS[1]], outputs=L, axis=0) if L > 1 else INPUTS[1]
        c0 = g.op("Split", [INPUTS[2]], outputs=L, axis=0) if L > 1 else INPUTS[2]
        layers = lambda x: [g.op("Squeeze", [v, self.axis0]) for v in ([x] if L == 1 else x)]  # noqa: E731
        states = g.op("Scan", layers(h0) + layers(c0) + [x_w, real], outputs=2 * L, body=self.step_body(), num_scan_inputs=2)
        states = [states] if isinstance(states, str) else states
        for name, part in ((OUTPUTS[1], states[:L]), (OUTPUTS[2], states[L:])):
            g.nodes.append(helper.make_node("Concat", [g.op("Unsqueeze", [s, self.axis0]) for s in part], [name], axis=0))
        y = g.op("Add", [self.times(g, states[L - 1], self.matrix(w.proj_w.T, "proj"), self.h_scale),
                         g.const(w.proj_b.astype(np.float32), "proj_b")])
        y_scale = None
        if self.int8:  # y has no known range: its own scale, row by row
            y_scale = g.op("Div", [g.op("Max", [g.op("ReduceMax", [g.op("Abs", [y])], axes=[1], keepdims=1),
                                                g.const(np.array(1e-12, np.float32), "tiny")]),
                                   g.const(np.array(127.0, np.float32), "c127")])
        logits = g.op("Add", [self.times(g, y, self.table, y_scale), g.const(w.out_b.astype(np.float32), "out_b")])
        g.nodes.append(helper.make_node("LogSoftmax", [logits], [OUTPUTS[0]], axis=1))
        tensor = helper.make_tensor_value_info
        inputs = [tensor(INPUTS[0], TensorProto.INT64, ["batch", "steps"]),
                  *(tensor(name, TensorProto.FLOAT, [L, "batch", H]) for name in INPUTS[1:])]
        outputs = [tensor(OUTPUTS[0], TensorProto.FLOAT, ["batch", V]),
                   *(tensor(name, TensorProto.FLOAT, [L, "batch", H]) for name in OUTPUTS[1:])]
        model = helper.make_model(helper.make_graph(g.nodes, "nextword-lstm", inputs, outputs, g.inits),
                                  opset_imports=[helper.make_opsetid("", OPSET)], producer_name="nextword")
        model.ir_version = 8
        checker.check_model(model)
        return model


def graph(weights: Weights, int8: bool = True):
    """The contract's graph for these weights: int8 (per row, see the module doc) or float32."""
    return Graph(weights, int8).build()


def write(weights: Weights, path: Path, int8: bool = True) -> None:
    onnx.save(graph(weights, int8), str(path))
