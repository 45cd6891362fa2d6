"""The architectures a checkpoint directory can hold: each one's config, network, loader and scoring interface.

An Architecture is everything the package knows about one network family: its config class (config.json's dict
<-> the network's sizes), how `robustbench train` builds it, how a checkpoint directory loads into it, how scoring
runs it (streamed or windowed, models/base.py) and its Hugging Face model_type. Its decoder for generation is the
network's own `make_decoder` (LoadedModel.make_decoder). Adding an architecture is one register_architecture call
(a model source plug-in may make it when imported); config.json's "architecture" key names the entry (mamba when
absent: mamba_ssm's own format has no such key).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from robustbench_bytes.errors import BadInput, first_line
from robustbench_bytes.models import checkpoint
from robustbench_bytes.models.base import LoadedModel
from robustbench_bytes.models.mamba import MambaConfig, MambaLM
from robustbench_bytes.models.transformer import GPT, GPTConfig

DEFAULT_ARCHITECTURE = "mamba"


@dataclass(frozen=True)
class Architecture:
    """config_class: from_dict(config.json's dict) (KeyError naming a missing field, TypeError or ValueError for a
    bad value), to_dict(), REQUIRED (the fields from_dict needs). network_class(config): a randomly initialised
    network. load(opened directory) -> the network with float32 weights on the CPU (BadInput naming the file at
    fault). wire(model): sets a LoadedModel's stream or window, max_length and vocab_size from its module.
    training_config(model.config with vocab_size, the training sequence length) -> the config a training run
    builds (default: config_class.from_dict). model_type: Hugging Face's, for config.json, where one exists."""

    name: str
    config_class: type
    network_class: Callable[[Any], torch.nn.Module]
    load: Callable[[CheckpointDirectory], torch.nn.Module]
    wire: Callable[[LoadedModel], None]
    training_config: Callable[[dict, int], Any] | None = None
    model_type: str | None = None

    def config_for_training(self, values: dict, seq_len: int):
        if self.training_config is not None:
            return self.training_config(values, seq_len)
        return self.config_class.from_dict(values)


ARCHITECTURES: dict[str, Architecture] = {}


def register_architecture(architecture: Architecture) -> Architecture:
    if architecture.name in ARCHITECTURES and ARCHITECTURES[architecture.name] is not architecture:
        raise BadInput(f"architecture {architecture.name!r}: registered twice")
    ARCHITECTURES[architecture.name] = architecture
    return architecture


def architecture_of(directory: Path, config: dict) -> str:
    """config.json's "architecture" (mamba when absent); BadInput for one we cannot load."""
    architecture = config.get("architecture", DEFAULT_ARCHITECTURE)
    if architecture not in ARCHITECTURES:
        raise BadInput(f"{Path(directory) / checkpoint.CONFIG_FILE}: architecture {architecture!r} is not supported "
                       f"(expected {' or '.join(ARCHITECTURES)}; use hf:PATH for Hugging Face models)")
    return architecture


@dataclass(frozen=True)
class CheckpointDirectory:
    """A checkpoint directory read once: its config.json, architecture, weight file, and every file loading it
    reads (config.json, the weights, the tokenizer files present), for the fingerprint."""

    path: Path
    config: dict
    architecture: str
    weights: Path
    files: tuple[Path, ...]


def open_directory(directory) -> CheckpointDirectory:
    """Reads config.json and finds the weight file; BadInput for a directory that cannot be loaded."""
    config = checkpoint.read_config(directory)
    directory = Path(directory)
    architecture = architecture_of(directory, config)
    try:
        weights = checkpoint.weight_file(directory)
    except BadInput as e:
        raise BadInput(f"{e}{checkpoint.hugging_face_hint(config)}") from None
    files = (directory / checkpoint.CONFIG_FILE, weights,
             *(directory / n for n in checkpoint.TOKENIZER_FILES if (directory / n).is_file()))
    return CheckpointDirectory(directory, config, architecture, weights, files)


def load_network(directory, device="cpu", opened: CheckpointDirectory | None = None):
    """(the network in eval mode with float32 weights on `device`, config dict) from a checkpoint directory of any
    registered architecture (opened: the directory when already opened)."""
    opened = opened or open_directory(directory)
    return ARCHITECTURES[opened.architecture].load(opened).to(device).eval(), opened.config


def _config(config_class: type, opened: CheckpointDirectory, what: str, hint: str = ""):
    """The directory's config.json as `config_class`; BadInput naming the field at fault."""
    config_file = opened.path / checkpoint.CONFIG_FILE
    try:
        return config_class.from_dict(opened.config)
    except KeyError as e:
        raise BadInput(f"{config_file}: missing required field {e.args[0]!r} "
                       f"(a {what} config needs {', '.join(config_class.REQUIRED)}){hint}") from None
    except (TypeError, ValueError) as e:
        raise BadInput(f"{config_file}: {first_line(e)}") from None


def _floats(state: dict) -> dict:
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


def _load_mamba(opened: CheckpointDirectory) -> MambaLM:
    """A mamba_ssm-format directory: its keys and shapes checked against the config one by one."""
    cfg = _config(MambaConfig, opened, "mamba_ssm", checkpoint.hugging_face_hint(opened.config))
    path = opened.weights
    state = checkpoint.load_weights(path)
    checkpoint.check_sizes(opened.path / checkpoint.CONFIG_FILE, path, state, cfg.n_layer, "backbone.layers.",
                           {"backbone.embedding.weight": (cfg.padded_vocab_size, cfg.d_model)})
    with torch.device("meta"):  # no random initialisation for the checkpoint to overwrite
        model = MambaLM(cfg)
    expected = model.state_dict()
    if cfg.tie_embeddings:
        head = state.pop("lm_head.weight", None)
        emb = state.get("backbone.embedding.weight")
        if head is not None and emb is not None and head.shape == emb.shape and not torch.equal(head, emb):
            raise BadInput(f"{path}: tie_embeddings is true but lm_head.weight differs from "
                           f"backbone.embedding.weight")
        expected.pop("lm_head.weight")
    missing = [k for k in expected if k not in state]
    if missing:
        raise BadInput(f"{path}: missing key {missing[0]!r} (expected shape {tuple(expected[missing[0]].shape)})"
                       + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        raise BadInput(f"{path}: unexpected key {unexpected[0]!r} (shape {tuple(state[unexpected[0]].shape)})"
                       + (f" and {len(unexpected) - 1} more" if len(unexpected) > 1 else ""))
    for key, ref in expected.items():
        if tuple(state[key].shape) != tuple(ref.shape):
            raise BadInput(f"{path}: wrong shape for {key!r}: expected {tuple(ref.shape)}, "
                           f"found {tuple(state[key].shape)}")
    model.load_state_dict(_floats(state), strict=False, assign=True)
    model.tie_weights()
    return model


def _load_gpt(opened: CheckpointDirectory) -> GPT:
    """Our GPT baseline's directory (config.json says "architecture": "transformer")."""
    gpt_config = _config(GPTConfig, opened, "transformer")
    state = checkpoint.load_weights(opened.weights)
    checkpoint.check_sizes(opened.path / checkpoint.CONFIG_FILE, opened.weights, state, gpt_config.n_layer, "blocks.",
                           {"embedding.weight": (gpt_config.vocab_size, gpt_config.d_model),
                            "position.weight": (gpt_config.block_size, gpt_config.d_model)})
    with torch.device("meta"):
        module = GPT(gpt_config)
    try:
        module.load_weights(_floats(state), assign=True)
    except ValueError as e:
        raise BadInput(f"{opened.weights}: {e}") from None
    return module


def _streamed(model: LoadedModel) -> None:
    """A recurrent network: the state carries a document of any length through in chunks."""
    model.stream = model.module
    model.vocab_size = model.module.config.padded_vocab_size


def _windowed(model: LoadedModel) -> None:
    """A network that sees at most block_size tokens: scored in rolling windows."""
    module = model.module
    model.window = lambda ids, mask: module(ids)  # right-padding only: causal attention never sees it
    model.max_length = module.config.block_size
    model.vocab_size = module.config.vocab_size


def _gpt_training_config(values: dict, seq_len: int) -> GPTConfig:
    """A config that names no block_size gets the training sequence length; a longer sequence is refused."""
    config = GPTConfig.from_dict({"block_size": seq_len, **values})
    if seq_len > config.block_size:
        raise ValueError(f"training sequences of {seq_len} tokens exceed block_size={config.block_size}")
    return config


register_architecture(Architecture("mamba", MambaConfig, MambaLM, _load_mamba, _streamed, model_type="mamba"))
register_architecture(Architecture("transformer", GPTConfig, GPT, _load_gpt, _windowed, _gpt_training_config))
