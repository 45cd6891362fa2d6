"""The metric table's statistics under bootstrap weights (stats.py draws them and takes the intervals): a perplexity
metric over a cell's per-document sums, and an accuracy over a task cell's items."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from robustbench_bytes import stats
from robustbench_bytes.results import metrics
from robustbench_bytes.results.task_schema import ItemRecord, accuracy_columns


@dataclass(frozen=True)
class DocumentArrays:
    """Per-document sums of one cell (metrics.SUMS), as float64 arrays in document order."""

    nll: np.ndarray
    bytes: np.ndarray
    clean_bytes: np.ndarray
    clean_words: np.ndarray
    tokens: np.ndarray | None = None  # None: not recorded (a metric over tokens has no interval then)

    @classmethod
    def from_documents(cls, documents: Sequence) -> "DocumentArrays":
        """From schema.DocumentRecords (or dicts with the same keys; `tokens` may be absent)."""
        def value(d, name):
            if not isinstance(d, dict):
                return getattr(d, name)
            return (d.get(name) or 0) if name == "tokens" else d[name]

        def column(name):
            return np.array([float(value(d, name)) for d in documents], dtype=np.float64)

        return cls(*(column(name) for name in metrics.SUMS))

    def columns(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in metrics.SUMS if getattr(self, name) is not None}

    def __len__(self) -> int:
        return len(self.nll)


def metric(name: str, docs: DocumentArrays) -> stats.Metric:
    """The bootstrap form of a metric of the metric table: its formula over the document-weighted sums."""
    spec, columns = metrics.METRICS[name], docs.columns()
    return lambda w: spec.formula(metrics.WeightedSums(columns, w))


def change(name: str, new: DocumentArrays, old: DocumentArrays) -> stats.Metric:
    """A metric's change from `old` to `new` (new - old) under the same document draws: paired."""
    return stats.difference(metric(name, new), metric(name, old))


def accuracy(correct: np.ndarray) -> stats.Metric:
    """Share of items right, under bootstrap weights over items."""
    return lambda w: (w @ correct) / w.sum(axis=1)


def accuracies(items: list[ItemRecord], confidence: float = 0.95, replicates: int = stats.DEFAULT_REPLICATES,
               seed: int = 0) -> dict:
    """acc, acc_norm and acc_bytes (when the records have it) with their bootstrap percentile intervals over
    items (field names of TaskResult)."""
    out = {}
    for name, column in accuracy_columns(items).items():
        if column is None:
            continue
        interval = stats.bootstrap(accuracy(np.array(column, dtype=np.float64)), len(items),
                                   confidence=confidence, replicates=replicates, seed=seed)
        out.update(interval.as_dict(name))
    return out
