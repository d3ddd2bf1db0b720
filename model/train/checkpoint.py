"""Checkpoints: a plain dict (state_dict, config, vocabulary, progress), never a pickled module.

They load with torch.load(weights_only=True), so a checkpoint cannot run code.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from model.engine.errors import UserError
from model.engine.text import Vocab
from model.train.lm import LSTMLM, LMConfig


class CheckpointError(UserError):
    """An unreadable or foreign checkpoint: reported as one line."""


def save(path: Path, payload: dict) -> None:
    """Write atomically: a crash mid-write never leaves a truncated checkpoint."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load(path) -> dict:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except Exception as e:  # torch raises many kinds for a damaged file
        raise CheckpointError(f"cannot read checkpoint {path}: not a nextword checkpoint or damaged ({type(e).__name__})") from None
    if not isinstance(payload, dict) or not {"model", "config", "vocab"} <= payload.keys():
        raise CheckpointError(f"{path} is not a nextword checkpoint (missing model, config or vocab)")
    return payload


def file_sha1(path) -> str:
    """Identifies the exact checkpoint an evaluation was made for."""
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def restore_model(payload: dict) -> tuple[LSTMLM, Vocab]:
    cfg = LMConfig(**payload["config"])
    model = LSTMLM(cfg)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as e:
        raise CheckpointError(f"checkpoint weights do not match its config: {str(e).splitlines()[0]}") from None
    model.eval()
    return model, Vocab(tuple(payload["vocab"]))
