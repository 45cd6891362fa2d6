"""Reading and writing mamba_ssm-format checkpoint directories.

A directory holds config.json and the weights, model.safetensors or pytorch_model.bin (a plain state
dict, read with torch.load(weights_only=True)). This is the format of the released MambaByte models
and of state-spaces/mamba-*; our own zoo models are saved the same way (safetensors). Which network a
directory holds and how it loads into it: models/architectures.py.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch

from robustbench_bytes.errors import BadInput, first_line
from robustbench_bytes.files import atomic_path, read_json, write_text_atomic

CONFIG_FILE = "config.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILE = "tokenizer.json"
# every tokenizer file tokenization.load_tokenizer may read
TOKENIZER_FILES = (TOKENIZER_FILE, "vocab.json", "encoder.json", "merges.txt", "vocab.bpe", "tokenizer_config.json")


def hugging_face_hint(config: dict) -> str:
    """A pointer to hf:PATH when config.json is a Hugging Face one (its MambaConfig says hidden_size where mamba_ssm
    says d_model; our zoo writes model_type too, so model_type alone says nothing)."""
    return "; it looks like a Hugging Face config: use hf:PATH" if "model_type" in config and "d_model" not in config \
        else ""


def read_config(directory) -> dict:
    """config.json of a checkpoint directory as a dict (BadInput when missing or not a JSON object)."""
    directory = _existing_dir(directory)
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise BadInput(f"{path}: missing; a checkpoint directory needs {CONFIG_FILE}")
    config = read_json(path)
    if not isinstance(config, dict):
        raise BadInput(f"{path}: expected a JSON object, found {type(config).__name__}")
    return config


def weight_file(directory) -> Path:
    """The weight file used for a directory: model.safetensors, else pytorch_model.bin."""
    directory = _existing_dir(directory)
    for name in WEIGHT_FILES:
        if (directory / name).is_file():
            return directory / name
    raise BadInput(f"{directory}: no weights; expected {' or '.join(WEIGHT_FILES)}")


def load_state_dict(directory) -> dict[str, torch.Tensor]:
    """The state dict of a checkpoint directory, on the CPU, tensors in their stored dtype."""
    return load_weights(weight_file(directory))


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """The state dict in a weight file (.safetensors, else a torch.load state dict), tensors in their stored dtype.

    The tensors map the weight file (copy-on-write) rather than holding a copy of it: pages are read on
    first use and shared with the page cache, so ranks on one node do not each keep the weights twice."""
    if path.suffix == ".safetensors":
        return _real_floats(path, _map_safetensors(path))
    try:
        state = _torch_load_mapped(path)
    except pickle.UnpicklingError as e:
        if "weights only" in str(e).lower() or "weights_only" in str(e).lower():
            raise BadInput(f"{path}: refused: not a plain tensor state dict "
                           f"(a pickle with code or objects torch.load(weights_only=True) rejects)") from None
        raise BadInput(f"{path}: unreadable or truncated ({first_line(e)})") from None
    except Exception as e:
        raise BadInput(f"{path}: unreadable or truncated ({first_line(e)})") from None
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise BadInput(f"{path}: refused: not a plain tensor state dict (expected a dict of name -> tensor)")
    return _real_floats(path, state)


def _map_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """safe_open's tensors are views of one private mapping of the file (no read of the whole file)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {key: f.get_tensor(key) for key in f.keys()}
    except Exception as e:  # safetensors raises its own error types for corrupt headers/data
        raise BadInput(f"{path}: unreadable or truncated safetensors file ({first_line(e)})") from None


def _torch_load_mapped(path: Path):
    """torch.load(weights_only=True), memory-mapped; files in torch's legacy (pre-1.6, non-zip) format cannot
    be mapped and are read whole."""
    import zipfile

    mmap = zipfile.is_zipfile(path)
    return torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap)


def _real_floats(path: Path, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for key, tensor in state.items():
        if not tensor.is_floating_point() or tensor.is_complex():
            raise BadInput(f"{path}: tensor {key!r} has dtype {str(tensor.dtype).replace('torch.', '')}; "
                           f"expected real floating-point weights")
    return state


def save_pretrained(model: torch.nn.Module, directory, config: dict, tokenizer_json: str | None = None) -> Path:
    """Writes config.json + model.safetensors (+ tokenizer.json), each file atomically.

    Tensors that share storage (tied embeddings) are stored once, under their first name in the
    state dict; loaders re-tie them (mamba: lm_head.weight is absent when tie_embeddings is true)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors, seen = {}, set()
    for name, tensor in model.state_dict().items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key in seen:
            continue
        seen.add(key)
        tensors[name] = tensor.detach().to("cpu").contiguous()
    with atomic_path(directory / "model.safetensors") as tmp:
        save_file(tensors, tmp, metadata={"format": "pt"})
    stale = directory / "pytorch_model.bin"  # would not be read, but would confuse a reader of the folder
    if stale.exists():
        stale.unlink()
    write_text_atomic(directory / CONFIG_FILE, json.dumps(config, indent=2, sort_keys=True) + "\n")
    if tokenizer_json is not None:
        write_text_atomic(directory / TOKENIZER_FILE, tokenizer_json)
    return directory


def check_sizes(config_file: Path, weights: Path, state: dict, n_layer: int, layer_prefix: str,
                shapes: dict[str, tuple]) -> None:
    """The config's sizes against the weight file, before a network is built from them: at least n_layer
    layers (keys `layer_prefix`N.*; extra ones are named by the key check after the build, which the file's
    size bounds), and the listed tensors (the embeddings) of the shapes that the config's sizes give.
    BadInput naming config.json and the size that disagrees."""
    layers = {key[len(layer_prefix):].split(".", 1)[0] for key in state if key.startswith(layer_prefix)}
    if len(layers) < n_layer:
        raise BadInput(f"{config_file}: n_layer = {n_layer} but {weights.name} holds {len(layers)} layer(s)")
    for key, shape in shapes.items():
        found = state.get(key)
        if found is not None and tuple(found.shape) != tuple(shape):
            raise BadInput(f"{config_file}: its sizes give {key} the shape {tuple(shape)} but {weights.name} "
                           f"holds {tuple(found.shape)}")


def _existing_dir(directory) -> Path:
    directory = Path(directory)
    if not directory.is_dir():
        raise BadInput(f"{directory}: no such checkpoint directory")
    return directory

