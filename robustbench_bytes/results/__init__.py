"""Run directories on disk: results.json, the cell files and the manifest, read as results.schema types.

A run directory holds:
  results.json   a JSON list of result objects, one per cell of the grid (CONTRACT.md fields plus
                 `status`, `error`, `cell`, fingerprints), rewritten atomically after each cell;
  cells/<cell>.json   one file per cell: its inputs fingerprint, result object and per-document NLLs;
  manifest.json  versions, git hash, device, seeds, sha256 of corpus and checkpoints, command line.

Every file is written atomically (files.atomic_path), so a kill at any moment leaves either the old or
the new file, never half of one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from robustbench_bytes.errors import BadInput
from robustbench_bytes.files import read_json, write_text_atomic
from robustbench_bytes.results.schema import CELL_FORMAT, CELL_FORMATS, CellResult, DocumentRecord, to_plain_json
from robustbench_bytes.results.task_schema import TaskResult
from robustbench_bytes.results.consistency import check_consistent, check_labels, check_records, check_task_consistent

RESULTS_FILE = "results.json"
MANIFEST_FILE = "manifest.json"
CELLS_DIR = "cells"


@dataclass(frozen=True)
class CellRecord:
    """A cell file: what decided its numbers (`inputs`), the result and its documents."""

    inputs: dict | None
    result: CellResult
    documents: tuple[DocumentRecord, ...]

    def problem(self, key: str | None = None, labels: dict | None = None,
                records: list[dict] | None = None) -> str | None:
        """Why it cannot be trusted (verified_problem); None when it can."""
        return verified_problem(self.result, self.documents, inputs=self.inputs, key=key, labels=labels,
                                records_expected=records)


# what a cell's inputs fingerprint says of the result it stores: input field -> result field
_INPUT_LABELS = {"model": "model_spec", "model_fingerprint": "model_fingerprint", "corpus_sha256": "corpus_sha256",
                 "task_sha256": "task_sha256", "noise": "noise", "seed": "seed", "noise_choices": "noise_choices",
                 "noise_target": "noise_target",
                 "scoring_version": "scoring_version"}


def input_labels(inputs: dict | None) -> dict:
    """The result fields (and their values) that a stored cell's inputs fingerprint fixes."""
    if not isinstance(inputs, dict):
        return {}
    labels = {field: inputs[name] for name, field in _INPUT_LABELS.items() if name in inputs}
    scoring = inputs.get("scoring")
    if isinstance(scoring, dict) and scoring.get("dtype") is not None:
        labels["dtype"] = scoring["dtype"]
    return labels


def verified_problem(result: CellResult | TaskResult, records, *, inputs: dict | None = None, key: str | None = None,
                     labels: dict | None = None, records_expected: list[dict] | None = None) -> str | None:
    """THE check of a stored cell, for a run that would reuse it and for the gate that compares it: why `result`
    (a perplexity or task cell) does not follow from its per-document or per-item `records`, or disagrees with
    what it says it is; None when it holds.

    Recomputed from the records: every total, every derived metric and which are undefined, positions
    (consistency.check_consistent); for task cells each prediction from its log-likelihoods, the accuracies
    and their bootstrap intervals (check_task_consistent, task_intervals_problem). Checked against its labels:
    `key` (the cell name it is stored or asked under; model, noise, seed, task), the fields its `inputs`
    fingerprint fixes (input_labels), `labels` (more result field -> value: corpus, documents, task, items),
    and `records_expected` (one field -> value dict per record: sizes, item labels) when the caller knows them."""
    task = isinstance(result, TaskResult)
    records = list(records)
    problem = (check_task_consistent(result, records) if task else check_consistent(result, records))
    if problem is None and key is not None and result.cell != key:
        problem = f"its labels name cell {result.cell}, not {key}"
    problem = problem or check_labels(result, {**input_labels(inputs), **(labels or {})})
    if problem is None and records_expected is not None:
        problem = check_records(records, records_expected)
    if problem is None and task:
        problem = task_intervals_problem(result, records)
    return problem


def task_intervals_problem(result: TaskResult, items) -> str | None:
    """Bootstrap intervals of a task cell that are not what task scoring gives for its items (its seed and
    replicates, the result's confidence)."""
    from robustbench_bytes.results.resampled import accuracies

    want = accuracies(list(items), result.confidence if result.confidence is not None else 0.95)
    for name, value in want.items():
        stored = getattr(result, name, None)
        if not isinstance(stored, (int, float)) or abs(stored - value) > 1e-12:
            return f"{name} {stored} does not follow from its item records ({value})"
    return None


def _json_default(obj: Any):
    # numpy scalars and paths sneak into result objects; store them as plain JSON values.
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def json_text(obj: Any, indent: int | None = 1) -> str:
    """Plain JSON (NaN and infinities as null)."""
    return json.dumps(to_plain_json(obj), indent=indent, default=_json_default, allow_nan=False)


def write_json_atomic(path: Path | str, obj: Any) -> None:
    """Write `obj` as JSON to `path` so that readers only ever see a complete file."""
    write_text_atomic(path, json_text(obj) + "\n")


def cell_path(run_dir: Path | str, cell: str) -> Path:
    return Path(run_dir) / CELLS_DIR / f"{cell}.json"


def read_record(path: Path, formats) -> dict | None:
    """A stored cell file's JSON object when it is readable and of one of `formats`, else None (then the cell
    is recomputed)."""
    try:
        raw = read_json(path)
    except BadInput:  # missing, unreadable or JSON that does not parse whole (files.parse_json)
        return None
    return raw if isinstance(raw, dict) and raw.get("format") in formats else None


def read_cell(run_dir: Path | str, cell: str) -> CellRecord | None:
    """The stored cell, or None when it is absent or unreadable (then it is recomputed)."""
    path = cell_path(run_dir, cell)
    raw = read_record(path, CELL_FORMATS)
    if raw is None:
        return None
    try:
        docs = raw.get("documents") or []
        return CellRecord(raw.get("inputs"), CellResult.from_json(raw.get("result"), str(path)),
                          tuple(DocumentRecord.from_json(d, f"{path}: document {i}") for i, d in enumerate(docs)))
    except (OSError, ValueError):
        return None


def write_cell(run_dir: Path | str, record: CellRecord) -> None:
    write_cell_file(cell_path(run_dir, record.result.cell), CELL_FORMAT, record.inputs, record.result,
                    "documents", record.documents)


def write_cell_file(path: Path, format: str, inputs: dict | None, result, key: str, records) -> None:
    """A cell file, of perplexity or task cells: format, cell name, inputs, status, result and its records under
    `key` (documents or items)."""
    write_json_atomic(path, {"format": format, "cell": result.cell, "inputs": inputs, "status": result.status,
                             "result": result.to_json(), key: [r.to_json() for r in records]})


def read_result_list(path: Path, parse, what: str) -> list:
    """A JSON list of result objects (results.json, tasks.json), each read with parse(raw, where)."""
    data = read_json(path)
    if not isinstance(data, list):
        raise BadInput(f"{path}: expected a JSON list of {what} objects")
    return [parse(r, f"{path}: result {i}") for i, r in enumerate(data)]


def write_results(run_dir: Path | str, results: list[CellResult]) -> None:
    write_json_atomic(Path(run_dir) / RESULTS_FILE, [r.to_json() for r in results])


# a folder is a run directory when it holds one of these (a perplexity run's results or manifest, a task run's
# or an lm-eval run's manifest)
RUN_MARKERS = (RESULTS_FILE, MANIFEST_FILE, f"tasks/{MANIFEST_FILE}", f"lm_eval/{MANIFEST_FILE}")


def is_run_dir(path: Path) -> bool:
    return any((Path(path) / marker).is_file() for marker in RUN_MARKERS)


def check_run_dir(run_dir: Path | str) -> Path:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BadInput(f"{run_dir}: no such run directory")
    if not is_run_dir(run_dir):
        raise BadInput(f"{run_dir}: not a run directory (no {RESULTS_FILE}; make one with `robustbench run`)")
    return run_dir


def read_results(run_dir: Path | str) -> list[CellResult]:
    """results.json of a run directory as CellResults; [] for a run directory of task or lm-eval runs only."""
    path = check_run_dir(run_dir) / RESULTS_FILE
    return read_result_list(path, CellResult.from_json, "result") if path.is_file() else []


def read_manifest(run_dir: Path | str) -> dict:
    path = Path(run_dir) / MANIFEST_FILE
    if not path.is_file():
        return {}
    data = read_json(path)
    return data if isinstance(data, dict) else {}


def read_documents(run_dir: Path | str, result: CellResult) -> list[DocumentRecord]:
    """Per-document NLLs of one finished cell, in document order."""
    path = cell_path(run_dir, result.extra.get("cell") or result.cell)
    if not path.is_file():
        raise BadInput(f"{path}: missing; the cell of {result.model} / {result.noise} has no per-document record")
    raw = read_json(path)
    docs = raw.get("documents") if isinstance(raw, dict) else None
    if not isinstance(docs, list):
        raise BadInput(f"{path}: expected a 'documents' list")
    records = [DocumentRecord.from_json(d, f"{path}: document {i}") for i, d in enumerate(docs)]
    return sorted(records, key=lambda d: d.index)


def load_runs(run_dirs: Iterable[Path | str] | Path | str):
    """One or more run directories as a pandas DataFrame: one row per cell, with a `run` column holding the
    run directory. Failed cells are kept (status "failed", metrics NaN)."""
    import pandas as pd

    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    rows = [{**r.to_json(), "run": str(run_dir)} for run_dir in run_dirs for r in read_results(run_dir)]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    first = ["run", "model", "noise", "seed", "corpus", "status"]
    return frame[[c for c in first if c in frame] + [c for c in frame if c not in first]]
