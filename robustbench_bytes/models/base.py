"""What scoring needs from any model: a tokenizer with a prefix, and one of two ways to run the network.

- streamed (recurrent models, e.g. Mamba): `stream(ids (b, L), state) -> (logits, state)`; a document of any
  length goes through in chunks with the state carried over, so the score is exact.
- windowed (Transformers): `window(ids (b, L), attention_mask (b, L)) -> logits` with L <= max_length;
  longer documents are scored in rolling windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import torch


class Tokenizer(Protocol):
    """The one tokenizer interface: tokenization.ByteTokenizer and SubwordTokenizer (also what
    `robustbench train` trains with) and models.hf.HFTokenizer implement it."""

    level: str  # "byte" | "subword"
    prefix_ids: list[int]  # the context placed before a document's first token
    newline: str  # "lf", or "crlf" for a byte model that writes each line break as CR LF
    byte_level_bpe: bool  # a GPT-2 style byte-level BPE (each character of a piece stands for one byte)
    special_ids: frozenset[int]  # ids that spell no text (BOS, EOS, pad, ...)
    token_bytes: tuple[bytes, ...]  # the UTF-8 bytes each id spells (b"" for special ids)

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def encode_with_byte_lengths(self, text: str): ...  # (ids, UTF-8 bytes each token stands for)

    def decode(self, ids) -> str: ...

    def describe_prefix(self) -> str: ...


@dataclass
class LoadedModel:
    """A model ready for scoring, with what it was loaded from: `resolved` lists every file its loader read
    (models/resolve.py), so `fingerprint` changes with any of them."""

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
    resolved: Any = None  # models.resolve.ResolvedModel
    spec: str = ""  # the model as the user named it
    # its incremental decoder for generation: decoder(model, **options) -> an object with generation/decoders.py's
    # interface (prefill, feed, step, save, restore, calls). None: the network's own
    # `make_decoder(vocab_size, device, **options)` when it has one, else a decoder built on `stream` / `window`.
    decoder: Callable | None = None

    @property
    def fingerprint(self) -> str | None:
        return self.resolved.fingerprint() if self.resolved is not None else None

    @property
    def streaming(self) -> bool:
        return self.stream is not None

    @property
    def prefix(self) -> str:
        return self.tokenizer.describe_prefix()

    def make_decoder(self, **options):
        """A fresh incremental decoder over this model (see `decoder`); options go to the one chosen (a
        Mamba's: fused=False keeps it on its reference step)."""
        if self.decoder is not None:
            return self.decoder(self, **options)
        own = getattr(self.module, "make_decoder", None)
        if callable(own):
            return own(self.tokenizer.vocab_size, self.device, **options)
        from robustbench_bytes.generation.decoders import scoring_decoder

        return scoring_decoder(self, **options)


def count_parameters(module: torch.nn.Module) -> int:
    """Distinct parameters: a tied head is counted once."""
    return sum(p.numel() for p in {id(p): p for p in module.parameters()}.values())


# The largest value each size of a model config may take: far above any released model of these architectures,
# low enough that building the network (on the meta device, before the weights are checked against it) stays
# quick and small. A config beyond them is refused before any network is built.
SIZE_LIMITS = {
    "d_model": 1 << 16, "n_layer": 1024, "vocab_size": 1 << 24, "block_size": 1 << 20, "n_head": 1024,
    "mlp_ratio": 64, "pad_vocab_size_multiple": 1 << 16, "d_state": 4096, "d_conv": 1024, "dt_rank": 1 << 16,
    "expand": 64,
}
INT_LIMIT = 1 << 31  # a size SIZE_LIMITS does not list


def check_config_fields(values: dict, ints: tuple = (), bools: tuple = (), numbers: tuple = ()) -> None:
    """ValueError naming the first field of a model config whose value is not an integer in 1..its limit in
    SIZE_LIMITS (ints), true/false (bools) or a finite number > 0, at most its limit when it has one (numbers)."""
    for name in ints:
        v = values.get(name)
        limit = SIZE_LIMITS.get(name, INT_LIMIT)
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= limit:
            raise ValueError(f"{name} = {_shown(v)}; expected an integer in 1..{limit}")
    for name in bools:
        v = values.get(name)
        if not isinstance(v, bool):
            raise ValueError(f"{name} = {_shown(v)}; expected true or false")
    for name in numbers:
        v = values.get(name)
        limit = SIZE_LIMITS.get(name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0 \
                or (limit is not None and v > limit):
            raise ValueError(f"{name} = {_shown(v)}; expected a finite number > 0"
                             + (f" and at most {limit}" if limit is not None else ""))


def _shown(value) -> str:
    """A config value as an error quotes it: at most 60 characters of its repr."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}... ({type(value).__name__} of {len(text)} characters)"
