"""Bootstrap intervals over documents (or items).

A bootstrap replicate is a vector of document weights (how often each document was drawn), and a statistic
(`Metric`) is a function W (k, n_docs) -> (k,): the point estimate uses W = ones, the replicates multinomial
draws. The metric table's metrics and accuracies in that form are results/bootstrap.py. Paired comparisons (clean vs noisy in
one run, baseline vs candidate in compare) use the SAME draws for both sides, which is what makes
them paired: document difficulty cancels out.

Intervals are percentile intervals; the draws are seeded, so a report is reproducible.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

DEFAULT_REPLICATES = 1000
MAX_REPLICATES = 100_000  # the most a caller may ask for: time and memory grow with replicates x documents
_MAX_WEIGHTS_PER_CHUNK = 4_000_000
_CACHE_LIMIT = 8_000_000  # weights kept for reuse: 64 MB of float64

Metric = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap percentile interval."""

    estimate: float
    low: float
    high: float
    confidence: float

    def as_dict(self, prefix: str) -> dict[str, float]:
        return {prefix: self.estimate, f"{prefix}_low": self.low, f"{prefix}_high": self.high}


def difference(new: Metric, old: Metric) -> Metric:
    """new - old under the same document draws (e.g. word-PPL increase over clean)."""
    return lambda w: new(w) - old(w)


def ratio(new: Metric, old: Metric) -> Metric:
    return lambda w: new(w) / old(w)


def mean_of(metrics: Sequence[Metric]) -> Metric:
    """Average of several metrics under the same draws (e.g. one per noise seed)."""
    metrics = list(metrics)
    return lambda w: sum(m(w) for m in metrics) / len(metrics)


def _draw_weights(n_docs: int, replicates: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _MAX_WEIGHTS_PER_CHUNK // max(1, n_docs))
    chunks, left = [], replicates
    while left > 0:
        k = min(per_chunk, left)
        # k rows of n_docs indices drawn with replacement, turned into per-row counts in one bincount
        picks = rng.integers(0, n_docs, size=(k, n_docs)) + (np.arange(k) * n_docs)[:, None]
        chunks.append(np.bincount(picks.ravel(), minlength=k * n_docs).reshape(k, n_docs).astype(np.float64))
        left -= k
    return chunks


@functools.lru_cache(maxsize=4)
def _cached_weights(n_docs: int, replicates: int, seed: int) -> tuple[np.ndarray, ...]:
    return tuple(_draw_weights(n_docs, replicates, seed))


def document_weights(n_docs: int, replicates: int, seed: int = 0) -> list[np.ndarray]:
    """Chunks of bootstrap weight rows (k, n_docs): how often each document was drawn, n_docs draws
    per row. The same (n_docs, replicates, seed) gives the same draws; small ones are cached, since
    every metric of a report is bootstrapped over the same documents."""
    if n_docs * replicates <= _CACHE_LIMIT:
        return list(_cached_weights(n_docs, replicates, seed))
    return _draw_weights(n_docs, replicates, seed)


def bootstrap(metric: Metric, n_docs: int, *, confidence: float = 0.95,
              replicates: int = DEFAULT_REPLICATES, seed: int = 0) -> Interval:
    """Point estimate and percentile interval of `metric` over documents resampled with replacement."""
    if n_docs < 1:
        raise ValueError("bootstrap needs at least one document")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    estimate = float(metric(np.ones((1, n_docs)))[0])
    if n_docs == 1:  # one document: every draw is the document itself
        return Interval(estimate, estimate, estimate, confidence)
    values = np.concatenate([np.asarray(metric(w), dtype=np.float64)
                             for w in document_weights(n_docs, replicates, seed)])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return Interval(estimate, math.nan, math.nan, confidence)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return Interval(estimate, float(low), float(high), confidence)
