"""What scoring needs from any model: a tokenizer with a prefix, and one of two ways to run the network.

- streamed (recurrent models, e.g. Mamba): `stream(ids (b, L), state) -> (logits, state)`; a document of any
  length goes through in chunks with the state carried over, so the score is exact.
- windowed (Transformers): `window(ids (b, L), attention_mask (b, L)) -> logits` with L <= max_length;
  longer documents are scored in rolling windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import torch

from robustbench_bytes.files import sha256_file


class Tokenizer(Protocol):
    prefix_ids: list[int]

    def encode(self, text: str) -> list[int]: ...

    def describe_prefix(self) -> str: ...


@dataclass
class LoadedModel:
    name: str
    level: str  # "byte" | "subword"
    architecture: str  # "mamba" | "transformer" | the Hugging Face model_type
    module: torch.nn.Module
    tokenizer: Any  # Tokenizer
    device: torch.device
    checkpoint_sha256: str
    source: str  # where it was loaded from: a directory, hf:PATH, a zoo name
    parameters: int
    info: dict = field(default_factory=dict)  # provenance and configuration, recorded with results
    stream: Callable | None = None
    window: Callable | None = None
    max_length: int | None = None  # windowed models: the longest input they accept
    vocab_size: int | None = None  # width of the logits (padded vocabulary); sizes batches to bound memory

    @property
    def streaming(self) -> bool:
        return self.stream is not None

    @property
    def prefix(self) -> str:
        return self.tokenizer.describe_prefix()


def count_parameters(module: torch.nn.Module) -> int:
    """Distinct parameters: a tied head is counted once."""
    return sum(p.numel() for p in {id(p): p for p in module.parameters()}.values())


def files_sha256(paths) -> str:
    """sha256 over the contents of the given files, in order (one file: that file's plain sha256)."""
    import hashlib

    paths = list(paths)
    if len(paths) == 1:
        return sha256_file(paths[0])
    h = hashlib.sha256()
    for p in paths:
        h.update(sha256_file(p).encode())
    return h.hexdigest()
