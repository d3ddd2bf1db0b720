"""Interpolated Kneser–Ney trigram: the n-gram baseline, on the same split and vocabulary.

Pure NumPy. It returns a full next-token distribution for any context, so the same
suggestion code (top-k, completions, keystroke savings) runs on it as on the LSTM:

  P3(w|u v) = max(c(uvw) - D3, 0) / c(uv.)  + D3 N1+(uv.) / c(uv.) * P2(w|v)
  P2(w|v)   = max(N1+(.vw) - D2, 0) / N1+(.v.) + D2 N1+(v.) / N1+(.v.) * P1(w)
  P1(w)     = max(N1+(.w) - D1, 0) / N1+(..) + D1 N1+types / N1+(..) / V
with D = n1 / (n1 + 2 n2) per order (Chen & Goodman), contexts padded with <s>.
"""
from __future__ import annotations

import numpy as np

from model.engine.text import BOS_ID


def _discount(counts: np.ndarray) -> float:
    n1, n2 = (counts == 1).sum(), (counts == 2).sum()
    return float(n1 / (n1 + 2 * n2)) if n1 + n2 else 0.5


class _Table:
    """Sparse rows: for each context key, the next tokens and their counts."""

    def __init__(self, keys: np.ndarray, nexts: np.ndarray, counts: np.ndarray):
        order = np.lexsort((nexts, keys))
        self.keys, self.nexts, self.counts = keys[order], nexts[order], counts[order].astype(np.float64)
        self.row_keys, self.starts = np.unique(self.keys, return_index=True)
        self.ends = np.append(self.starts[1:], len(self.keys))
        self.totals = np.add.reduceat(self.counts, self.starts) if len(self.keys) else np.zeros(0)
        self.types = self.ends - self.starts
        self.discount = _discount(self.counts)

    def row(self, key: int):
        """(next ids, counts, total, distinct) for a context key, or None if never seen."""
        r = np.searchsorted(self.row_keys, key)
        if r == len(self.row_keys) or self.row_keys[r] != key:
            return None
        s, e = self.starts[r], self.ends[r]
        return self.nexts[s:e], self.counts[s:e], self.totals[r], self.types[r]


class KneserNeyTrigram:
    def __init__(self, seqs: list[np.ndarray], vocab_size: int):
        self.V = V = vocab_size
        u, v, w = self._trigrams(seqs)
        tri, tri_counts = np.unique((u * V + v) * V + w, return_counts=True)
        self.tri = _Table(tri // V, tri % V, tri_counts)
        # continuation counts: in how many distinct contexts a (v, w) / a w appears
        bi, bi_cont = np.unique(tri % (V * V), return_counts=True)
        self.bi = _Table(bi // V, bi % V, bi_cont)
        uni = np.bincount(bi % V, minlength=V).astype(np.float64)
        d1, total = _discount(uni[uni > 0]), uni.sum()
        self.p1 = np.maximum(uni - d1, 0) / total + d1 * (uni > 0).sum() / total / V

    @staticmethod
    def _trigrams(seqs):
        us, vs, ws = [], [], []
        for s in seqs:  # s = <s> w1 .. wn </s>; predict s[1:] from two tokens of context
            padded = np.concatenate(([BOS_ID], s)).astype(np.int64)
            us.append(padded[:-2]); vs.append(padded[1:-1]); ws.append(padded[2:])
        return np.concatenate(us), np.concatenate(vs), np.concatenate(ws)

    def distribution(self, u: int, v: int) -> np.ndarray:
        """P(. | u v) over the whole vocabulary."""
        p = self._level(self.bi, v, self.p1)
        return self._level(self.tri, u * self.V + v, p)

    @staticmethod
    def _level(table: _Table, key: int, lower: np.ndarray) -> np.ndarray:
        row = table.row(key)
        if row is None:
            return lower
        nexts, counts, total, types = row
        d = table.discount
        p = lower * (d * types / total)
        p[nexts] += np.maximum(counts - d, 0) / total
        return p

    def logprobs(self, seq: np.ndarray) -> np.ndarray:
        """(len(seq) - 1, V): row i is log P(next | seq[: i + 1]), for seq = <s> .. </s>."""
        padded = np.concatenate(([BOS_ID], seq)).astype(np.int64)
        rows = [self.distribution(padded[i], padded[i + 1]) for i in range(len(seq) - 1)]
        return np.log(np.stack(rows)).astype(np.float32)
