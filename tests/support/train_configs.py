"""Tiny training configs (a few steps on a slice of the KJV) for the training tests."""

from __future__ import annotations

from robustbench_bytes.training.config import TrainConfig

ESTHER = {"train": ["kjv:validation"], "validation": ["kjv:validation"], "test": []}


def tiny(architecture="transformer", tokenizer="bpe", **overrides):
    if architecture == "transformer":
        model = {"architecture": "transformer",
                 "config": {"block_size": 32, "n_layer": 1, "n_head": 2, "d_model": 32}}
    else:
        model = {"architecture": "mamba",
                 "config": {"d_model": 16, "n_layer": 1, "rms_norm": False, "tie_embeddings": False}}
    raw = {"name": f"tiny-{architecture}", "model": model,
           "tokenizer": {"type": "bpe", "vocab_size": 320} if tokenizer == "bpe" else {"type": "bytes"},
           "data": ESTHER, "steps": 6, "batch_size": 2, "seq_len": 32, "lr": 0.01, "warmup_steps": 2,
           "eval_every": 3, "eval_bytes": 600, "checkpoint_every": 2, "seed": 7, "threads": 1}
    raw.update(overrides)
    return TrainConfig.from_dict(raw, "test config")
