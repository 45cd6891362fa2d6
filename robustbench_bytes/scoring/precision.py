"""The one dtype vocabulary of every scorer: what `--dtype` accepts, what a cell records, and the autocast.

auto: float32 on the CPU, bfloat16 autocast on CUDA. float32: weights and arithmetic in float32. bfloat16 /
float16: float32 weights with the matrix products autocast to that precision (recurrent state and log-softmax
stay float32); recorded as "bfloat16-autocast" / "float16-autocast".
"""

from __future__ import annotations

import torch

from robustbench_bytes.errors import BadInput

DTYPES = ("auto", "float32", "bfloat16", "float16")


def resolve(device: torch.device, dtype: str | None) -> str:
    """float32, bfloat16 or float16: what `dtype` (None meaning auto) means on `device`."""
    dtype = dtype or "auto"
    if dtype not in DTYPES:
        raise BadInput(f"dtype={dtype!r}: expected one of {', '.join(DTYPES)}")
    if dtype == "auto":
        return "bfloat16" if device.type == "cuda" else "float32"
    return dtype


def label(device: torch.device, dtype: str | None) -> str:
    """What a result records as its dtype: float32, bfloat16-autocast or float16-autocast."""
    name = resolve(device, dtype)
    return name if name == "float32" else f"{name}-autocast"


def autocast(device: torch.device, dtype: str | None):
    """The autocast context of `dtype` on `device` (a disabled one for float32)."""
    name = resolve(device, dtype)
    if name == "float32":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=getattr(torch, name))
