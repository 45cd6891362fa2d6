"""Whether a stored cell can be trusted: its totals, derived metrics, positions, predictions and accuracies follow
from its records, and its labels and records are those it was scored for (results.verified_problem uses these)."""

from __future__ import annotations

import math

from robustbench_bytes.results import metrics
from robustbench_bytes.results.positions import Positions, mismatch, total
from robustbench_bytes.results.schema import CellResult, DocumentRecord, derived_metrics, metric_value
from robustbench_bytes.results.task_schema import ItemRecord, TaskResult, accuracy_columns, predictions

def _close(a: float, b: float, rel: float = 1e-9) -> bool:
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


def check_consistent(result: CellResult, documents: list[DocumentRecord]) -> str | None:
    """Why a stored ok cell cannot be trusted (None when it can): a non-finite number, document records that are
    not documents 0..n-1 once each, totals that are not the sums of its per-document records, derived metrics
    (bits per byte, per clean byte, word and byte perplexity, and which are undefined) that do not follow from
    those totals, or positions that do not add up."""
    if result.nll is None or not math.isfinite(result.nll):
        return f"non-finite NLL ({result.nll})"
    for doc in documents:
        if not math.isfinite(doc.nll):
            return f"non-finite NLL ({doc.nll}) in document {doc.index}"
    if len(documents) != result.documents:
        return f"{len(documents)} document records for {result.documents} documents"
    if sorted(d.index for d in documents) != list(range(len(documents))):
        return f"document records are not documents 0..{len(documents) - 1} once each"
    total = math.fsum(d.nll for d in documents)
    if not _close(total, result.nll):
        return f"NLL {result.nll} is not the sum of its documents' ({total})"
    sums = ["bytes", "clean_bytes", "clean_words"] + (["tokens"] if result.tokens is not None else [])
    for name in sums:
        value = getattr(result, name)
        if value != sum(getattr(d, name) for d in documents):
            return f"{name} {value} is not the sum of its documents'"
    return _derived_mismatch(result) or _positions_mismatch(result, documents)


def _derived_mismatch(result: CellResult) -> str | None:
    """A derived metric that is not what the metric table gives from the cell's totals (or undefined when it is
    not). A registered metric the cell does not carry (stored before it existed) is not checked."""
    values, undefined = derived_metrics(result.nll, result.bytes, result.clean_bytes, result.clean_words,
                                        result.tokens)
    carried = [name for name in values if name in metrics.BUILT_IN or name in result.extra]
    for name in carried:
        stored, want = metric_value(result, name), values[name]
        if stored is not None and (not isinstance(stored, (int, float)) or not math.isfinite(stored)):
            return f"non-finite {name} ({stored})"
        if (stored is None) != (want is None) or (want is not None and not _close(stored, want, 1e-12)):
            return f"{name} {stored} does not follow from the cell's totals ({want})"
    if set(result.undefined or {}) & set(carried) != set(undefined) & set(carried):
        return f"undefined metrics {sorted(result.undefined or {})} are not {sorted(undefined)}"
    return None


def _positions_mismatch(result: CellResult, documents: list[DocumentRecord]) -> str | None:
    """Positions, where recorded, that do not add up to their cell's or document's nll and bytes, or a cell's
    positions that are not the sum of its documents'."""
    for doc in documents:
        if doc.positions is not None:
            why = mismatch(Positions.from_json(doc.positions, f"document {doc.index}"), doc.nll, doc.bytes)
            if why:
                return f"document {doc.index}: {why}"
    if result.positions is None:
        return None
    cell = Positions.from_json(result.positions, "result")
    why = mismatch(cell, result.nll, result.bytes)
    if why:
        return why
    if documents and all(d.positions is not None for d in documents):
        summed = total(Positions.from_json(d.positions, f"document {d.index}") for d in documents)
        if (summed.n_buckets != cell.n_buckets or list(summed.bytes) != list(cell.bytes)
                or not all(_close(a, b) for a, b in zip(summed.nll.tolist(), cell.nll.tolist()))):
            return "positions are not the sum of its documents' positions"
    return None


def check_labels(result, expected: dict) -> str | None:
    """The first field of `result` whose value is not the expected one (field -> value), or None."""
    for name, want in expected.items():
        have = getattr(result, name, None)
        if have != want:
            return f"{name} {have!r} is not the {want!r} it was scored for"
    return None


def check_records(records, expected: list[dict]) -> str | None:
    """The first per-document or per-item record (in index order) whose fields are not the expected ones
    (one field -> value dict per record, by index), or None."""
    by_index = sorted(records, key=lambda r: r.index)
    if len(by_index) != len(expected):
        return f"{len(by_index)} records where {len(expected)} were scored"
    for record, want in zip(by_index, expected):
        for name, value in want.items():
            if getattr(record, name) != value:
                return f"record {record.index}: {name} {getattr(record, name)!r} is not the {value!r} of its input"
    return None


def check_task_consistent(result: TaskResult, items: list[ItemRecord]) -> str | None:
    """Why a stored ok task cell cannot be trusted (None when it can): item records that are not items 0..n-1
    once each, a non-finite log-likelihood, a label out of range, a prediction that is not the argmax of its
    item's log-likelihoods, or accuracies that the predictions do not reproduce (results.verified_problem also
    checks the intervals, which need task scoring's bootstrap)."""
    if len(items) != result.items or not items:
        return f"{len(items)} item records for {result.items} items"
    if sorted(i.index for i in items) != list(range(len(items))):
        return f"item records are not items 0..{len(items) - 1} once each"
    for item in items:
        if not all(math.isfinite(x) for x in item.loglikelihoods):
            return f"non-finite log-likelihood in item {item.index}"
        if not 0 <= item.label < len(item.loglikelihoods):
            return f"item {item.index}: label {item.label} is not one of its {len(item.loglikelihoods)} choices"
        expected = predictions(item.loglikelihoods, item.bytes, item.chars)
        if (item.prediction, item.prediction_norm, item.prediction_bytes) != expected:
            return (f"item {item.index}: predictions {item.prediction}, {item.prediction_norm}, "
                    f"{item.prediction_bytes} are not the argmax of its log-likelihoods {expected}")
    for name, column in accuracy_columns(items).items():
        value = getattr(result, name)
        if column is None:
            if value is not None:
                return f"{name} {value} but its item records have no {name} predictions"
        elif value is None or abs(value - sum(column) / len(items)) > 1e-12:
            return f"{name} {value} is not what its item records give ({sum(column)}/{len(items)})"
    return None
