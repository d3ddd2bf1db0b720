"""The LSTM language model (torch).

    tokens (B, T) -> embedding (B, T, E) -> LSTM x layers (B, T, H)
                  -> Linear projection H->E -> tied output layer (B, T, V)

The output layer shares the embedding matrix (tied weights, as phone-keyboard LMs do:
it halves the parameters). The state (h, c) goes in and comes out, so callers can feed
one token at a time without re-reading the context; that is the ONNX contract too.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class LMConfig:
    """The model's shape (defaults: model.train.recipe.RECIPE)."""
    vocab: int
    embedding: int
    hidden: int
    layers: int
    dropout: float

    def to_dict(self) -> dict:
        return asdict(self)


class LSTMLM(nn.Module):
    def __init__(self, cfg: LMConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab, cfg.embedding)
        self.drop = nn.Dropout(cfg.dropout)
        self.lstm = nn.LSTM(cfg.embedding, cfg.hidden, cfg.layers, batch_first=True,
                            dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.proj = nn.Linear(cfg.hidden, cfg.embedding)  # not LSTM(proj_size=): that does not export
        self.out_bias = nn.Parameter(torch.zeros(cfg.vocab))
        nn.init.normal_(self.embed.weight, std=0.05)

    def zero_state(self, batch: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (self.cfg.layers, batch, self.cfg.hidden)
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)

    def forward(self, tokens, state=None):
        """Logits for every step: (B, T, V), and the state after the last step."""
        x = self.drop(self.embed(tokens))                     # (B, T, E)
        y, state = self.lstm(x, state)                        # (B, T, H)
        y = self.proj(self.drop(y))                           # (B, T, E)
        logits = y @ self.embed.weight.t() + self.out_bias    # (B, T, V)
        return logits, state

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class NextTokenLM(nn.Module):
    """The exported signature: (tokens, h0, c0) -> (logprobs of the next token, hn, cn)."""

    def __init__(self, lm: LSTMLM):
        super().__init__()
        self.lm = lm

    def forward(self, tokens, h0, c0):
        logits, (hn, cn) = self.lm(tokens, (h0, c0))
        return torch.log_softmax(logits[:, -1], dim=-1), hn, cn
