"""Training checkpoints: everything a resumed run needs to end with the same weights as an uninterrupted one.

OUT/checkpoints/last.pt, written atomically with torch.save and read back with torch.load(weights_only=True)
(plain tensors, numbers, strings, lists and dicts: no pickled code runs)."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import torch

from robustbench_bytes.errors import BadInput, first_line
from robustbench_bytes.files import parse_json, write_bytes_atomic

CHECKPOINT = "checkpoints/last.pt"
REQUIRED_KEYS = {"step": int, "model": dict, "optimizer": dict, "torch_rng": torch.Tensor,
                 "sampler_rng": torch.Tensor, "log": str, "config": str}


def save_checkpoint(path: Path, *, step: int, bytes_seen: int, model, optimizer, gen: torch.Generator,
                    log: list[dict], tokenizer_json: str | None, elapsed: float, cpu_seconds: float,
                    config: dict) -> None:
    state = {
        "step": step,
        "bytes_seen": int(bytes_seen),
        "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "sampler_rng": gen.get_state(),
        "log": json.dumps(log),
        "tokenizer_json": tokenizer_json or "",
        "elapsed": float(elapsed),
        "cpu_seconds": float(cpu_seconds),
        "config": json.dumps(config, sort_keys=True),
    }
    buf = io.BytesIO()
    torch.save(state, buf)
    write_bytes_atomic(path, buf.getvalue())


def load_checkpoint(path: Path) -> dict:
    """The checkpoint's state; BadInput naming the file when it is corrupt, unsafe, or lacks a key."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt, truncated or unsafe file
        raise BadInput(f"{path}: cannot load checkpoint ({type(e).__name__}: {first_line(e, 200)})") \
            from None
    if not isinstance(state, dict):
        raise BadInput(f"{path}: not a training checkpoint (expected a dict of training state)")
    for key, kind in REQUIRED_KEYS.items():
        if not isinstance(state.get(key), kind):
            raise BadInput(f"{path}: training checkpoint key {key!r} is missing or not a {kind.__name__}; "
                           f"train afresh into another --out")
    state["config"] = parse_json(state["config"], f"{path} (its config)", "the training config as a JSON object")
    state["log"] = parse_json(state["log"], f"{path} (its log)", "the training log as a JSON list")
    check_state(path, state)
    return state


def check_state(path: Path, state: dict) -> None:
    """BadInput naming the key of a loaded checkpoint whose value a resumed run could not use: counts that are
    not integers >= 0, times that are not finite numbers >= 0, a config or log of the wrong shape, or weights
    that are not finite (a resumed run would publish their NaN bits per byte)."""
    def bad(key, expected):
        raise BadInput(f"{path}: training checkpoint key {key!r} is {_shown(state.get(key))}; expected {expected}; "
                       f"train afresh into another --out")

    for key in ("step", "bytes_seen"):
        v = state.get(key, 0)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            bad(key, "an integer >= 0")
    for key in ("elapsed", "cpu_seconds"):
        v = state.get(key, 0.0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            bad(key, "a finite number >= 0")
    if not isinstance(state.get("tokenizer_json", ""), str):
        bad("tokenizer_json", "a string")
    if not isinstance(state["config"], dict):
        bad("config", "a JSON object")
    log = state["log"]
    if not isinstance(log, list) or not all(isinstance(e, dict) for e in log):
        bad("log", "a JSON list of objects")
    tokens = log[-1].get("tokens", 0) if log else 0
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
        raise BadInput(f"{path}: the last entry of the training log has tokens = {_shown(tokens)}; expected an "
                       f"integer >= 0")
    for name, tensor in state["model"].items():
        if not isinstance(tensor, torch.Tensor):
            raise BadInput(f"{path}: model entry {_shown(name)} is not a tensor")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise BadInput(f"{path}: model weight {name!r} is not finite (NaN or infinite); a resumed run would "
                           f"publish a broken model: train afresh into another --out")


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}... ({type(value).__name__})"
