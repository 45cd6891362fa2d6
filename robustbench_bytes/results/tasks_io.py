"""Task cells in run directories: tasks.json and tasks/<cell>.json, read as result_schema types.

  tasks.json           a JSON list of task result objects, the task grid last asked for, rewritten atomically
                       after each finished task cell;
  tasks/<cell>.json    one file per task cell: its inputs fingerprint, result object and per-item records;
  tasks/manifest.json  versions, device, models, tasks (name, sha256, items), noises, seeds, command line.

A run directory without tasks.json has no task results (read_task_results gives []).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from robustbench_bytes import results as results_io
from robustbench_bytes.errors import BadInput
from robustbench_bytes.files import read_json
from robustbench_bytes.results.task_schema import TASKS_DIR, TASKS_FILE, TASK_CELL_FORMAT, ItemRecord, TaskResult


@dataclass(frozen=True)
class TaskCellRecord:
    """A task cell file: what decided its numbers (`inputs`), the result and its items."""

    inputs: dict | None
    result: TaskResult
    items: tuple[ItemRecord, ...]

    def problem(self, key: str | None = None, labels: dict | None = None,
                records: list[dict] | None = None) -> str | None:
        """Why it cannot be trusted (results.verified_problem); None when it can."""
        return results_io.verified_problem(self.result, self.items, inputs=self.inputs, key=key, labels=labels,
                                           records_expected=records)


def task_cell_path(run_dir: Path | str, cell: str) -> Path:
    return Path(run_dir) / TASKS_DIR / f"{cell}.json"


def read_task_cell(run_dir: Path | str, cell: str) -> TaskCellRecord | None:
    """The stored task cell, or None when it is absent or unreadable (then it is recomputed)."""
    path = task_cell_path(run_dir, cell)
    raw = results_io.read_record(path, (TASK_CELL_FORMAT,))
    if raw is None:
        return None
    try:
        items = tuple(ItemRecord.from_json(x, f"{path}: item {i}") for i, x in enumerate(raw.get("items") or []))
        return TaskCellRecord(raw.get("inputs"), TaskResult.from_json(raw.get("result"), str(path)), items)
    except (OSError, ValueError):
        return None


def write_task_cell(run_dir: Path | str, record: TaskCellRecord) -> None:
    results_io.write_cell_file(task_cell_path(run_dir, record.result.cell), TASK_CELL_FORMAT, record.inputs,
                               record.result, "items", record.items)


def write_task_results(run_dir: Path | str, results: list[TaskResult]) -> None:
    results_io.write_json_atomic(Path(run_dir) / TASKS_FILE, [r.to_json() for r in results])


def read_task_results(run_dir: Path | str) -> list[TaskResult]:
    """tasks.json of a run directory; [] for a run directory without task cells."""
    path = Path(run_dir) / TASKS_FILE
    return results_io.read_result_list(path, TaskResult.from_json, "task result") if path.is_file() else []


def read_task_items(run_dir: Path | str, result: TaskResult) -> list[ItemRecord]:
    """The per-item records of one finished task cell, in item order."""
    path = task_cell_path(run_dir, result.extra.get("cell") or result.cell)
    if not path.is_file():
        raise BadInput(f"{path}: missing; the task cell of {result.model} / {result.task} / {result.noise} has no "
                       f"per-item record")
    raw = read_json(path)
    items = raw.get("items") if isinstance(raw, dict) else None
    if not isinstance(items, list):
        raise BadInput(f"{path}: expected an 'items' list")
    return sorted((ItemRecord.from_json(x, f"{path}: item {i}") for i, x in enumerate(items)),
                  key=lambda r: r.index)


def write_task_manifest(run_dir: Path | str, manifest: dict) -> None:
    results_io.write_json_atomic(Path(run_dir) / TASKS_DIR / results_io.MANIFEST_FILE, manifest)
