"""One line naming the machine a model was trained or exported on (for the model card)."""
from __future__ import annotations

import os
import platform


def describe_hardware(device: str = "cpu") -> str:
    if device.startswith("cuda"):
        import torch
        return f"{torch.cuda.get_device_name(0)} (CUDA)"
    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), platform.processor())
    return f"{model or 'CPU'}, {os.cpu_count()} cores"


def _cpuinfo() -> list[str]:
    try:
        with open("/proc/cpuinfo") as f:
            return f.read().splitlines()
    except OSError:
        return []
