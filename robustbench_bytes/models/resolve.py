"""Resolving a MODEL argument once: which loader takes it, and every file that loader reads, for fingerprints.

A ModelSource is one way to name models (the zoo, a checkpoint directory, hf:PATH, smollm2-135m, or an
installed plug-in of the entry-point group `robustbench_bytes.models`). resolve_model(spec) asks each in
turn; the ResolvedModel it returns lists the input files, so a run can tell whether a stored cell is
still valid without loading the network, and the loader reads exactly those files.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable

from robustbench_bytes.errors import BadInput
from robustbench_bytes.files import sha256_file
from robustbench_bytes.plugins import Registry, guarded, instance_or_factory, type_name

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")


@dataclass(frozen=True)
class ResolvedModel:
    """A model named by `spec`, found by source `source`; `path` is its directory or file when it has one."""

    spec: str
    source: str
    path: Path | None
    input_files: tuple[Path, ...]
    details: dict = field(default_factory=dict, compare=False)  # source-specific (e.g. a GGUF file name)

    def file_hashes(self) -> dict[str, str]:
        """name relative to `path` (or the full path) -> sha256, for every input file."""
        out = {}
        for f in self.input_files:
            name = str(f.relative_to(self.path)) if self.path and self.path.is_dir() and f.is_relative_to(self.path) \
                else str(f)
            out[name] = cached_sha256(f)
        return out

    def weights_sha256(self) -> str:
        """sha256 of the weight file (of the weight files' hashes, in order, when there are several)."""
        weights = [f for f in self.input_files if f.suffix in WEIGHT_SUFFIXES] or list(self.input_files)
        if len(weights) == 1:
            return cached_sha256(weights[0])
        return hashlib.sha256("".join(cached_sha256(f) for f in weights).encode()).hexdigest()

    def fingerprint(self) -> str:
        """sha256 over the source and every input file's name and sha256: any edit of a file the loader reads
        (weights, config.json, tokenizer files) changes it."""
        payload = json.dumps({"source": self.source, "files": self.file_hashes()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


def cached_sha256(path: Path) -> str:
    st = os.stat(path)
    return _sha256_at(str(path), st.st_size, st.st_mtime_ns, st.st_ino)


@lru_cache(maxsize=256)
def _sha256_at(path: str, size: int, mtime_ns: int, inode: int) -> str:
    return sha256_file(path)


@dataclass(frozen=True)
class ModelSource:
    """matches(spec) says whether the source takes the name; resolve(spec) -> ResolvedModel (BadInput when
    it names something unusable); load(resolved, device) -> LoadedModel; listing() -> entries for
    `robustbench models` (dicts with name, level, architecture, parameters, size_bytes, provenance, source)."""

    name: str
    matches: Callable[[str], bool]
    resolve: Callable[[str], ResolvedModel]
    load: Callable
    listing: Callable[[], list[dict]] = lambda: []
    names: Callable[[], list[str]] | None = None  # the names it takes without a path (default: its listing's)

    def known_names(self) -> list[str]:
        return self.names() if self.names else [entry["name"] for entry in self.listing()]


def _guard(source: ModelSource, where: str) -> ModelSource:
    """An installed model source whose functions raise or return the wrong type is one line naming it."""
    from robustbench_bytes.models.base import LoadedModel

    def of_type(kind, what):
        return lambda value: None if isinstance(value, kind) else f"{type_name(value)}; expected {what}"

    def strings(value):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return None if ok else f"{type_name(value)}; expected a list of names"

    def entries(value):
        ok = isinstance(value, list) and all(isinstance(e, dict) and LISTING_KEYS <= set(e) for e in value)
        return None if ok else f"{type_name(value)}; expected a list of dicts with {', '.join(sorted(LISTING_KEYS))}"

    return replace(
        source,
        matches=guarded(where, source.matches, "matches()"),
        resolve=guarded(where, source.resolve, "resolve()", of_type(ResolvedModel, "a ResolvedModel")),
        load=guarded(where, source.load, "load()", of_type(LoadedModel, "a LoadedModel")),
        listing=guarded(where, source.listing, "listing()", entries),
        names=guarded(where, source.names, "names()", strings) if source.names else None)


LISTING_KEYS = {"name", "level", "architecture", "parameters", "size_bytes", "provenance", "source"}
MODEL_SOURCES: Registry[ModelSource] = Registry("model source", "robustbench_bytes.models",
                                                instance_or_factory(ModelSource, "a ModelSource"), guard=_guard)


def register_model_source(source: ModelSource) -> ModelSource:
    return MODEL_SOURCES.register(source.name, source)


def known_names() -> list[str]:
    """Model names that need no path: the zoo, smollm2-135m when installed, and what plug-in sources take."""
    return [n for name in MODEL_SOURCES for n in MODEL_SOURCES[name].known_names()]


def resolve_model(spec: str) -> ResolvedModel:
    return source_for(spec).resolve(spec)


def source_for(spec: str) -> ModelSource:
    """The source that takes `spec`; BadInput naming the known models when none does."""
    if not isinstance(spec, str) or not spec:
        raise BadInput(f"model {spec!r}: expected a zoo name, a checkpoint directory or hf:PATH")
    for name in MODEL_SOURCES:
        if MODEL_SOURCES[name].matches(spec):
            return MODEL_SOURCES[name]
    known = ", ".join(known_names()) or "none"
    if Path(spec).expanduser().exists():
        raise BadInput(f"model {spec!r}: is a file; expected a checkpoint directory, a zoo name or hf:PATH")
    raise BadInput(f"model {spec!r}: no such zoo model (known: {known}) and no such directory")
