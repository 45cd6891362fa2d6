"""Bits by position: a document's NLL and bytes bucketed by byte offset into the scored (noised) text.

Buckets are fixed for every document and cell: [0, 64), [64, 128), [128, 256), ... [2^k, 2^(k+1)).
A positions object covers the buckets up to its longest document: `edges` = [0, 64, 128, ..., upper]
(one more edge than buckets), `nll` (nats) and `bytes` per bucket. A token's NLL, and its bytes, go to
the bucket of the token's last byte, so a bucket's bits per byte are those of the tokens that end in
it (for a byte model: exactly the bytes at those offsets). Sums over buckets equal the document's (the
cell's) `nll`, up to float64 rounding, and `bytes`, exactly. Two positions objects of different lengths
add by padding the shorter one with empty buckets, since their edges agree where both have them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from robustbench_bytes.errors import BadInput

FIRST_EDGE = 64
_FIRST_EXPONENT = 6  # 2**6 == FIRST_EDGE


def edges(n_buckets: int) -> list[int]:
    """The n_buckets + 1 edges of the first n_buckets buckets: [0, 64, 128, ...]."""
    return [0] + [FIRST_EDGE << i for i in range(n_buckets)]


def bucket_of(offsets) -> np.ndarray:
    """Bucket index of each byte offset (>= 0): 0 below 64, else floor(log2(offset)) - 5."""
    offsets = np.asarray(offsets, dtype=np.int64)
    if offsets.size and offsets.min() < 0:
        raise ValueError("byte offsets must be >= 0")
    # frexp's exponent of an integer o >= 1 is floor(log2(o)) + 1, exactly (no float log rounding)
    exponent = np.frexp(np.maximum(offsets, 1).astype(np.float64))[1].astype(np.int64) - 1
    return np.maximum(exponent - (_FIRST_EXPONENT - 1), 0)


def buckets_for_length(n_bytes: int) -> int:
    """How many buckets cover offsets 0 .. n_bytes - 1 (0 for an empty text)."""
    return 0 if n_bytes <= 0 else int(bucket_of([n_bytes - 1])[0]) + 1


def token_buckets(byte_lengths) -> np.ndarray:
    """The bucket of each token's last byte, from the tokens' UTF-8 byte lengths in order. A token of no
    bytes (e.g. the CR a CRLF tokenizer inserts) goes with the byte before it (bucket 0 at the start)."""
    ends = np.cumsum(np.asarray(byte_lengths, dtype=np.int64))
    return bucket_of(np.maximum(ends - 1, 0))


@dataclass(frozen=True)
class Positions:
    """NLL (float64 nats) and bytes (int64) per bucket."""

    nll: np.ndarray
    bytes: np.ndarray

    @property
    def n_buckets(self) -> int:
        return len(self.nll)

    @classmethod
    def empty(cls, n_buckets: int = 0) -> "Positions":
        return cls(np.zeros(n_buckets, dtype=np.float64), np.zeros(n_buckets, dtype=np.int64))

    @classmethod
    def of_document(cls, token_nll, byte_lengths) -> "Positions":
        """From per-token NLLs and byte lengths (both in token order)."""
        byte_lengths = np.asarray(byte_lengths, dtype=np.int64)
        buckets = token_buckets(byte_lengths)
        n = buckets_for_length(int(byte_lengths.sum()))
        return cls.from_sums(np.bincount(buckets, weights=np.asarray(token_nll, dtype=np.float64), minlength=n),
                             bucket_bytes(buckets, byte_lengths, n))

    @classmethod
    def from_sums(cls, nll, n_bytes) -> "Positions":
        nll, n_bytes = np.asarray(nll, dtype=np.float64), np.asarray(n_bytes, dtype=np.int64)
        if nll.shape != n_bytes.shape or nll.ndim != 1:
            raise ValueError("nll and bytes must be 1-D arrays of the same length")
        return cls(nll, n_bytes)

    def padded(self, n_buckets: int) -> "Positions":
        if n_buckets < self.n_buckets:
            raise ValueError("cannot drop buckets")
        pad = n_buckets - self.n_buckets
        return Positions(np.pad(self.nll, (0, pad)), np.pad(self.bytes, (0, pad)))

    def __add__(self, other: "Positions") -> "Positions":
        n = max(self.n_buckets, other.n_buckets)
        a, b = self.padded(n), other.padded(n)
        return Positions(a.nll + b.nll, a.bytes + b.bytes)

    def to_json(self) -> dict:
        return {"edges": edges(self.n_buckets), "nll": [float(x) for x in self.nll],
                "bytes": [int(x) for x in self.bytes]}

    @classmethod
    def from_json(cls, raw: object, where: str) -> "Positions":
        """BadInput naming `where` unless raw is {"edges": [0, 64, 128, ...], "nll": [...], "bytes": [...]}
        with one more edge than buckets, finite NLLs and non-negative integer byte counts."""
        if not isinstance(raw, dict) or not all(k in raw for k in ("edges", "nll", "bytes")):
            raise BadInput(f"{where}: positions must be an object with 'edges', 'nll' and 'bytes'")
        got_edges, nll, n_bytes = raw["edges"], raw["nll"], raw["bytes"]
        if not all(isinstance(x, list) for x in (got_edges, nll, n_bytes)) or len(nll) != len(n_bytes):
            raise BadInput(f"{where}: positions 'nll' and 'bytes' must be lists of the same length")
        if got_edges != edges(len(nll)):
            raise BadInput(f"{where}: positions 'edges' must be {edges(len(nll))} for {len(nll)} buckets")
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in nll):
            raise BadInput(f"{where}: positions 'nll' must hold finite numbers")
        if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in n_bytes):
            raise BadInput(f"{where}: positions 'bytes' must hold integers >= 0")
        return cls.from_sums(nll, n_bytes)


def bucket_bytes(buckets: np.ndarray, byte_lengths: np.ndarray, n_buckets: int) -> np.ndarray:
    """Bytes per bucket: each token's bytes in its bucket (integer sums, exact)."""
    return np.bincount(buckets, weights=byte_lengths, minlength=n_buckets).round().astype(np.int64)


def total(parts) -> Positions:
    """The sum of several documents' positions (the cell's)."""
    out = Positions.empty()
    for part in parts:
        out = out + part
    return out


def mismatch(positions: Positions, nll: float, n_bytes: int, rel: float = 1e-9) -> str | None:
    """Why positions do not add up to (nll, n_bytes), or None when they do."""
    if int(positions.bytes.sum()) != n_bytes:
        return f"positions hold {int(positions.bytes.sum())} bytes, not {n_bytes}"
    summed = math.fsum(positions.nll.tolist())
    if abs(summed - nll) > rel * max(1.0, abs(nll)):
        return f"positions sum to NLL {summed}, not {nll}"
    return None
