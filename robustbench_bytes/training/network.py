"""The network a training run starts from: built from its config's architecture, sized against the machine first.

Each architecture (models/architectures.py) says how its config is made from the run's model.config and the
training sequence length (a Transformer that names no block_size gets that length).
"""

from __future__ import annotations

import os
from typing import Callable

import torch

from robustbench_bytes.errors import BadInput
from robustbench_bytes.models.architectures import ARCHITECTURES
from robustbench_bytes.models.base import count_parameters
from robustbench_bytes.training.config import TrainConfig


def build_model(cfg: TrainConfig, vocab_size: int, seq_len: int) -> tuple[torch.nn.Module, dict]:
    """The randomly initialised model and its config.json dict."""
    network, config = network_of(cfg, vocab_size, seq_len)
    rng = torch.get_rng_state()  # the sizing build must not move the initialisation's random stream
    with torch.device("meta"):  # sizes first: nothing is allocated for a model that cannot fit
        check_memory(count_parameters(network()), cfg.batch_size * seq_len * vocab_size)
    torch.set_rng_state(rng)
    model = network()
    if hasattr(model, "scan_backend"):
        model.scan_backend = "cpu"  # the kernel's fast, differentiable CPU path
    return model, config


def network_of(cfg: TrainConfig, vocab_size: int, seq_len: int) -> tuple[Callable[[], torch.nn.Module], dict]:
    """(a function building the network, its config.json dict) from the config's model; BadInput naming the
    field of model.config at fault."""
    architecture = ARCHITECTURES[cfg.model["architecture"]]
    try:
        config = architecture.config_for_training(dict(cfg.model.get("config", {}), vocab_size=vocab_size), seq_len)
    except KeyError as e:
        raise BadInput(f"model.config: missing required field {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        raise BadInput(f"model.config: {e}") from None
    return (lambda: architecture.network_class(config)), config.to_dict()


def check_memory(parameters: int, logits_per_batch: int) -> None:
    """BadInput when training would need more than the machine's memory: per parameter its weight, gradient
    and AdamW's two moments (16 bytes), per logit of a batch its value, gradient and softmax (12 bytes). A
    lower bound (activations come on top): it refuses sizes that cannot fit, it does not promise a fit."""
    need = 16 * parameters + 12 * logits_per_batch
    have = physical_memory()
    if have and need > have:
        raise BadInput(f"model.config: {parameters:,} parameters with batches of {logits_per_batch:,} logits need "
                       f"at least {need / 2**30:,.1f} GiB to train; this machine has {have / 2**30:,.1f} GiB")


def physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
