"""The metric table: each metric once, with its formula over sums, label, format, direction and when it is undefined.

A perplexity metric (MetricSpec) is a function of a cell's document sums (SUMS: nll, bytes, clean_bytes, clean_words,
tokens). The same formula gives the cell's value from its totals (plain numbers: `value`, `derived`) and the bootstrap
replicates from document-weighted sums (arrays w @ column: resampled.metric), so a metric's point value and its interval
cannot drift apart. Scoring (schema.derived_metrics), the report's tables and CSVs, the terminal table and the
gate read this table; a new metric is one `register` call (`tests/results/test_metric_table.py` adds one and
finds it in the cell JSON, the report's CSV and the gate's output).

The task accuracies (acc, acc_norm, acc_bytes) are a sibling table (ACCURACIES) rather than entries of METRICS: they
are not functions of document sums but means of per-item right/wrong columns (task_schema.accuracy_columns), they
have no clean-byte or word denominator that can vanish, and a task cell stores their intervals beside them; one
table for both would need every entry to say which of the two record kinds it reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from robustbench_bytes.formatting import NA, UNDEFINED, format_accuracy, format_bits, format_ppl, has_no_interval

LN2 = math.log(2.0)
SUMS = ("nll", "bytes", "clean_bytes", "clean_words", "tokens")  # what a formula may read
_UNITS = {"bytes": "bytes", "clean_bytes": "clean bytes", "clean_words": "clean words", "tokens": "tokens"}

Sums = Mapping[str, Any]  # sum name -> a number (a cell's total) or an array (weighted sums, one per replicate)


def exp(x):
    """e**x of a number (math.exp: OverflowError past the largest float, which `derived` turns into "undefined") or
    of an array (numpy, elementwise; inf past it), so that one formula serves totals and bootstrap replicates."""
    return np.exp(x) if isinstance(x, np.ndarray) else math.exp(x)


@dataclass(frozen=True)
class MetricSpec:
    """One metric of a perplexity cell.

    name: its field in the result object, cell JSON and the report's CSV columns (with _low and _high).
    formula: sums -> value, over plain totals or over arrays of weighted sums alike.
    denominator: the sum it divides by: the metric is undefined (null, `undefined` says why) where that is 0.
    label, format: its column heading and how its numbers are written (formatting.py).
    lower_is_better: its direction.
    change, change_label: the report's column of its change over the clean text (noisy minus clean, paired
      bootstrap), or None for no such column.
    report: whether the report's tables and report.csv show it (PRIMARY first, then in table order).
    documents: whether documents.csv has its per-document value.
    gate: whether the gate lists its paired change between the two runs as a reported (not gated) check. The
      built-in entries say False: the gate's threshold is on bits per clean byte and its ratio rule on the word-PPL
      increase (gate/cells.py), and its output stays what it was.
    overflow: why a value past the largest float is undefined (sums -> text); None: a generic sentence.
    """

    name: str
    formula: Callable[[Sums], Any]
    denominator: str
    label: str
    format: Callable[[float | None], str]
    lower_is_better: bool = True
    change: str | None = None
    change_label: str | None = None
    report: bool = True
    documents: bool = True
    gate: bool = True
    overflow: Callable[[Sums], str] | None = None

    def defined(self, sums: Sums) -> tuple[float | None, str | None]:
        """(value, None) from these sums, or (None, why it is undefined): a denominator of 0 or not given, or a
        value past the largest float."""
        denominator = sums.get(self.denominator)
        if denominator is None or denominator <= 0:
            return None, f"no {_UNITS[self.denominator]} " + ("given" if denominator is None else "to divide by")
        try:
            value = self.formula(sums)
        except OverflowError:
            value = math.inf
        if math.isfinite(value):
            return value, None
        return None, (self.overflow(sums) if self.overflow else
                      f"{self.name} is past the largest float: nll {sums['nll']:.4g} nats over {denominator:,} "
                      f"{_UNITS[self.denominator]}")


def _per(denominator: str) -> Callable[[Sums], float]:
    return lambda s: s["nll"] / (s[denominator] * LN2)


def _perplexity(denominator: str) -> Callable[[Sums], float]:
    return lambda s: exp(s["nll"] / s[denominator])


def _overflow(denominator: str) -> Callable[[Sums], str]:
    return lambda s: (f"exp({s['nll'] / s[denominator]:.4g}) overflows a float: nll {s['nll']:.4g} nats over "
                      f"{s[denominator]:,} {_UNITS[denominator]}")


# CONTRACT.md's metrics and formulas, in its order (the order of a cell's `undefined` and of documents.csv).
_BUILT_IN = (
    MetricSpec("bits_per_byte", _per("bytes"), "bytes", "bits/byte", format_bits, gate=False),
    MetricSpec("bits_per_clean_byte", _per("clean_bytes"), "clean_bytes", "bits/clean byte", format_bits,
               change="bits_rise", change_label="rise over clean", gate=False),
    MetricSpec("word_perplexity", _perplexity("clean_words"), "clean_words", "word-PPL", format_ppl,
               change="ppl_increase", change_label="word-PPL increase", documents=False, gate=False,
               overflow=_overflow("clean_words")),
    MetricSpec("byte_perplexity", _perplexity("bytes"), "bytes", "byte-PPL", format_ppl, report=False,
               documents=False, gate=False, overflow=_overflow("bytes")),
)
BUILT_IN = tuple(spec.name for spec in _BUILT_IN)  # the metrics every result object has as fields
PRIMARY = "bits_per_clean_byte"  # the headline: the leaderboard ranks by it, the gate's threshold is on it, and
                                 # the report's tables lead with it (the same unit under every noise)

METRICS: dict[str, MetricSpec] = {spec.name: spec for spec in _BUILT_IN}


def register(spec: MetricSpec) -> MetricSpec:
    """Adds a metric to the table (after the built-in ones): scoring stores it in each new cell, the report shows
    it (spec.report) and the gate lists it (spec.gate). ValueError for a name already taken or a denominator that
    is not one of SUMS. Returns the spec; `unregister` takes it out again."""
    taken = set(METRICS) | {s.change for s in METRICS.values() if s.change}
    if spec.name in taken or (spec.change and spec.change in taken | {spec.name}):
        raise ValueError(f"metric {spec.name!r}: its name or change column is already in the metric table")
    if spec.denominator not in SUMS:
        raise ValueError(f"metric {spec.name!r}: denominator {spec.denominator!r} is not one of {', '.join(SUMS)}")
    METRICS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Takes a registered metric out of the table; the built-in ones stay."""
    if name in BUILT_IN:
        raise ValueError(f"metric {name!r} is built in")
    METRICS.pop(name, None)


def report_specs() -> list[MetricSpec]:
    """The metrics the report shows, in its column order: PRIMARY first, then the others in table order."""
    return sorted((s for s in METRICS.values() if s.report), key=lambda s: s.name != PRIMARY)


def document_specs() -> list[MetricSpec]:
    return [s for s in METRICS.values() if s.documents]


def gate_specs() -> list[MetricSpec]:
    return [s for s in METRICS.values() if s.gate]


def report_columns() -> list[str]:
    """The report's metric columns in order: each shown metric, then its change over clean where it has one."""
    return [name for s in report_specs() for name in (s.name, s.change) if name]


def labels() -> dict[str, str]:
    """Column heading of every report column (metrics and their changes)."""
    out = {}
    for s in METRICS.values():
        out[s.name] = s.label
        if s.change:
            out[s.change] = s.change_label or f"{s.label} change"
    return out


def spec_of(column: str) -> MetricSpec | AccuracySpec | None:
    """The entry behind a column: a metric, a metric's change over clean (its metric's entry) or an accuracy; None
    for a name neither table holds."""
    for s in METRICS.values():
        if column in (s.name, s.change):
            return s
    return ACCURACIES.get(column)


def derived(sums: Sums) -> tuple[dict, dict]:
    """Every metric of the table from a cell's totals, and for each undefined one (None) the reason
    (MetricSpec.defined)."""
    values, undefined = {}, {}
    for spec in METRICS.values():
        values[spec.name], why = spec.defined(sums)
        if why is not None:
            undefined[spec.name] = why
    return values, undefined


class WeightedSums(Mapping):
    """The document sums of bootstrap replicates: sums[name] = w @ columns[name], computed when a formula reads it
    (columns: per-document values, (n_docs,) or (n_docs, buckets); w: (k, n_docs) document weights)."""

    def __init__(self, columns: Mapping[str, np.ndarray], w: np.ndarray):
        self._columns, self._w = columns, w

    def __getitem__(self, name: str):
        return self._w @ self._columns[name]

    def __iter__(self):
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


@dataclass(frozen=True)
class AccuracySpec:
    """One accuracy of a task cell: the share of items its predictions get right (the column of
    task_schema.accuracy_columns of the same name); higher is better; written by formatting.format_accuracy.
    report: whether the report's tasks.csv has it (with its interval and its drop from clean)."""

    name: str
    label: str
    definition: str
    format: Callable[[float | None], str] = format_accuracy
    lower_is_better: bool = False
    report: bool = True


ACCURACIES: dict[str, AccuracySpec] = {spec.name: spec for spec in (
    AccuracySpec("acc", "acc", "argmax of the choices' log-likelihoods"),
    AccuracySpec("acc_norm", "acc_norm", "argmax of the log-likelihoods per character of the choice"),
    AccuracySpec("acc_bytes", "acc_bytes", "argmax of the log-likelihoods per UTF-8 byte of the choice",
                 report=False),
)}
PRIMARY_ACCURACY = "acc"  # the task cells' headline: the task leaderboards rank by it, the gate's threshold is on it,
                          # and the report's accuracy tables, plot and the run's summary show it


def _entry(metric: str):
    """The table's entry of a column (spec_of); KeyError naming a column the table does not hold."""
    entry = spec_of(metric)
    if entry is None:
        raise KeyError(f"{metric!r} is not a column of the metric table (metrics.py)")
    return entry


def is_undefined(row, metric: str) -> bool:
    """Whether a report row's `undefined` ("name: why; ...") names the metric, or the metric a change is of
    (metrics.MetricSpec.defined says why one is undefined)."""
    why = row.get("undefined") if hasattr(row, "get") else None
    name = _entry(metric).name
    return isinstance(why, str) and any(part.startswith(f"{name}: ") for part in why.split("; "))


def format_value(row, metric: str, interval: bool = True, signed: bool = False) -> str:
    """A report row's metric with its interval; "n/a" when the metric is undefined for the row."""
    fmt = _entry(metric).format
    value = row[metric]
    if value is None or not math.isfinite(value):
        return UNDEFINED if is_undefined(row, metric) else NA
    text = fmt(value)
    if signed and value >= 0:
        text = "+" + text
    low, high = row[f"{metric}_low"], row[f"{metric}_high"]
    if interval and math.isfinite(low) and math.isfinite(high):
        text += f" [{fmt(low)}, {fmt(high)}]"
    elif interval and has_no_interval(row):
        text += f" [{UNDEFINED}]"
    return text
