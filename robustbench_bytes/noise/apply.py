"""Applying a spec to a document or a corpus, each document with its own random stream."""

from __future__ import annotations

import functools
import hashlib
from typing import Iterable, Sequence

import numpy as np

from .codepoints import from_codepoints, to_codepoints
from .spec import Part, canonical, parse


@functools.lru_cache(maxsize=1024)
def spec_hash(canonical_spec: str) -> int:
    """A stable 64-bit hash of a canonical spec (never Python's hash(), which is salted per process)."""
    return int.from_bytes(hashlib.sha256(canonical_spec.encode("utf-8")).digest()[:8], "big")


def _check_index(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def streams(canonical_spec: str, n_parts: int, seed: int = 0, doc_index: int = 0) -> list[np.random.Generator]:
    """The random streams of one document: PCG64 seeded by SeedSequence([seed, spec_hash, doc_index]);
    a composed spec A+B gives each part its own child stream (SeedSequence.spawn), so how much A draws
    never shifts B's draws."""
    root = np.random.SeedSequence([_check_index("seed", seed), spec_hash(canonical_spec),
                                   _check_index("doc_index", doc_index)])
    if n_parts == 1:
        return [np.random.Generator(np.random.PCG64(root))]
    return [np.random.Generator(np.random.PCG64(child)) for child in root.spawn(n_parts)]


def _apply_parts(text: str, name: str, parts: tuple[Part, ...], seed: int, doc_index: int) -> str:
    if not parts:  # clean: nothing to draw, but the arguments are checked all the same
        _check_index("seed", seed)
        _check_index("doc_index", doc_index)
        return text
    value: str | np.ndarray = text
    for part, rng in zip(parts, streams(name, len(parts), seed, doc_index)):
        if part.noise.on == "codepoints":
            value = to_codepoints(value) if isinstance(value, str) else value
        elif not isinstance(value, str):
            value = from_codepoints(value)
        value = part.noise.transform(value, rng, **dict(part.params))
        if part.noise.on == "text" and not isinstance(value, str):
            raise TypeError(f"noise {part.noise.name!r} returned {type(value).__name__}, expected str")
    return value if isinstance(value, str) else from_codepoints(value)


def apply(text: str, spec: str, seed: int = 0, doc_index: int = 0) -> str:
    """Noise one document: `spec` is a noise spec (not a preset), doc_index its place in its corpus."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _apply_parts(text, canonical(spec), parse(spec), seed, doc_index)


def apply_corpus(texts: Iterable[str], spec: str, seed: int = 0,
                 indices: Sequence[int] | None = None) -> list[str]:
    """Noise every document; document k uses the stream of doc_index indices[k] (default k), so a shard
    of a corpus passed with its global indices gets exactly the outputs of the whole corpus."""
    texts = list(texts)
    if indices is None:
        indices = range(len(texts))
    elif len(indices) != len(texts):
        raise ValueError(f"indices has {len(indices)} entries for {len(texts)} texts")
    name, parts = canonical(spec), parse(spec)
    for t in texts:
        if not isinstance(t, str):
            raise TypeError(f"texts must be str, got {type(t).__name__}")
    return [_apply_parts(t, name, parts, seed, i) for t, i in zip(texts, indices)]
