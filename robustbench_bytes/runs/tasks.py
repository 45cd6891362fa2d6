"""The task grid: models x tasks x (clean + noise specs) x seeds, scored cell by cell, resumable.

The task kind of grid.py's executor (TaskCells), whose rules are those of every kind of cell: a task cell is stored as
tasks/<key>.json with the fingerprint of everything that decides its numbers (task_cell_inputs: every file
the model's loader reads, the task's items, the noise, the seed, whether the choices are noised, the dtype,
the task scoring version), and a rerun reuses it only when that matches and its item records reproduce its
accuracies. A failed cell is always retried; tasks.json is rewritten after every cell, so a kill loses at
most the cell being scored. Clean cells are scored once per model and task, with seed 0.

A run directory may hold both grids: `robustbench run` writes results.json, `robustbench run --task` tasks.json
(tasks/manifest.json makes the folder a run directory). Task cells are not split over ranks (grid.open_world).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robustbench_bytes import results as results_io
from robustbench_bytes import stats
from robustbench_bytes.formatting import NA, format_signed, text_table
from robustbench_bytes.results import resampled, tasks_io
from robustbench_bytes.results.metrics import ACCURACIES, PRIMARY_ACCURACY
from robustbench_bytes.runs.grid import GridOptions, Outcome, single_share
from robustbench_bytes.runs.grid import execute as execute_grid
from robustbench_bytes.results.schema import CLEAN, CLEAN_SEED
from robustbench_bytes.results.task_schema import TASKS_DIR, TASKS_FILE, TaskResult, accuracy_columns, task_cell_key
from robustbench_bytes.runs.models import ModelCache, ModelUnavailable, describe_error


@dataclass(frozen=True)
class TaskCell:
    model: str
    task: str  # the task as the user named it (a name or a file)
    noise: str
    seed: int
    noise_target: str = "context"  # task_schema.NOISE_TARGETS

    @property
    def key(self) -> str:
        return task_cell_key(self.model, self.task, self.noise, self.seed, self.noise_target)


@dataclass
class TaskRunOptions(GridOptions):
    noise_targets: tuple = ("context",)
    dtype: str = "auto"


TaskRunOutcome = Outcome


def build_task_grid(models: list[str], tasks: list[str], noises: list[str], seeds: list[int],
                    noise_targets: tuple = ("context",)) -> list[TaskCell]:
    """Model-major: for each model and task its clean cell, then every noise target x noise x seed (BLT's
    protocol: for each target, the five noises)."""
    seeds = list(dict.fromkeys(seeds)) or [0]
    grid = []
    for model in dict.fromkeys(models):
        for task in dict.fromkeys(tasks):
            grid.append(TaskCell(model, task, CLEAN, CLEAN_SEED))
            grid += [TaskCell(model, task, noise, seed, target) for target in dict.fromkeys(noise_targets)
                     for noise in noises for seed in seeds]
    return grid


def task_cell_inputs(cell: TaskCell, model_fingerprint: str, task_sha256: str, dtype: str,
                     noised_sha256: str | None = None) -> dict:
    """Everything that decides a task cell's numbers; a noised cell also carries the sha256 of its noised
    contexts and choices (noised_task_sha256), so that a change in a noise's code rescores it."""
    from robustbench_bytes.scoring.tasks import TASK_SCORING_VERSION

    return {"model": cell.model, "model_fingerprint": model_fingerprint, "task_sha256": task_sha256,
            "noise": cell.noise, "seed": cell.seed, **_target_input(cell),
            "dtype": dtype, "scoring_version": TASK_SCORING_VERSION,
            **({"noised_sha256": noised_sha256} if noised_sha256 is not None and cell.noise != CLEAN else {})}


def _target_input(cell: TaskCell) -> dict:
    """The noise target as a cell input: context cells keep the inputs they had before targets existed (no
    field), so their stored cells stay reusable; the other targets name themselves."""
    return {"noise_target": cell.noise_target} if cell.noise != CLEAN and cell.noise_target != "context" else {}


def noised_task_sha256(cell: TaskCell, task) -> str:
    """The sha256 of a task cell's contexts and choices as scored (task_scoring.noised_items)."""
    from robustbench_bytes.runs.fingerprint import texts_sha256
    from robustbench_bytes.scoring.tasks import noised_items

    _, contexts, choices = noised_items(task, cell.noise, cell.seed, cell.noise_target)
    return texts_sha256([text for context, row in zip(contexts, choices) for text in [context, *row]])


def _labels(cell: TaskCell, task) -> tuple[dict, list[dict]]:
    """What a stored task cell must say of itself (result field -> value) and of each item (its label)."""
    return ({"task": task.name, "task_spec": cell.task, "items": len(task.items), "task_sha256": task.sha256},
            [{"index": i, "label": item.label} for i, item in enumerate(task.items)])


def _failed(cell: TaskCell, task, error: str, model=None) -> TaskResult:
    return TaskResult(task=task.name, task_spec=cell.task, model=model.name if model else cell.model,
                      model_spec=cell.model, noise=cell.noise, seed=cell.seed, items=len(task.items),
                      noise_target=cell.noise_target if cell.noise != CLEAN else "context", task_sha256=task.sha256,
                      model_fingerprint=model.fingerprint if model else None, status="failed", error=error)


def _manifest(grid, tasks, options: TaskRunOptions, described, started, finished) -> dict:
    import torch

    from robustbench_bytes.results import provenance
    from robustbench_bytes.scoring.precision import label as dtype_label
    from robustbench_bytes.scoring.tasks import TASK_SCORING_VERSION

    return {
        "format": "robustbench-tasks/1",
        **provenance.grid_record(grid, options, described, started, finished),
        "dtype": dtype_label(torch.device(options.device), options.dtype),
        "task_scoring_version": TASK_SCORING_VERSION,
        "noise_targets": list(options.noise_targets),
        "tasks": [{"task": spec, "name": t.name, "sha256": t.sha256, "items": len(t.items),
                   "description": t.description, "provenance": t.provenance} for spec, t in tasks.items()],
    }


class TaskCells:
    """Multiple-choice task cells (grid.CellKind): one model on one task under one noise, target and seed, scored
    whole in one process, stored as tasks/<key>.json and listed in tasks.json, the grid recorded in
    tasks/manifest.json; after the last cell each (model, task)'s noise average goes to task_summary.json."""

    name = "task"
    list_file = TASKS_FILE
    manifest_file = f"{TASKS_DIR}/{results_io.MANIFEST_FILE}"
    shardable = False

    def __init__(self, tasks: dict, options: TaskRunOptions):
        self.tasks, self.options = tasks, options  # tasks: spec -> Task

    def plan(self, grid: list[TaskCell], models: ModelCache) -> dict:
        return {"cells": [c.key for c in grid]}

    def describe(self, cell: TaskCell) -> str:
        return f"{cell.model} | {self.tasks[cell.task].name} | {cell.noise} | seed {cell.seed}"

    def inputs(self, cell: TaskCell, model: dict) -> dict | None:
        fingerprint, task = model.get("model_fingerprint"), self.tasks[cell.task]
        if not fingerprint:
            return None
        noised = noised_task_sha256(cell, task) if cell.noise != CLEAN else None
        return task_cell_inputs(cell, fingerprint, task.sha256, self.options.dtype, noised)

    def stored(self, out: Path, cell: TaskCell):
        return tasks_io.read_task_cell(out, cell.key)

    def problem(self, record, cell: TaskCell) -> str | None:
        return "it failed" if not record.result.ok else record.problem(cell.key, *_labels(cell, self.tasks[cell.task]))

    def shares(self, out, cell, inputs, world_size: int) -> dict:
        return single_share(world_size)

    def score(self, models: ModelCache, cell: TaskCell, inputs: dict | None, share, desc: str):
        from robustbench_bytes.scoring.tasks import score_task

        task = self.tasks[cell.task]
        try:
            model = models.get(cell.model)
        except ModelUnavailable as e:
            return tasks_io.TaskCellRecord(inputs, _failed(cell, task, f"cannot load model: {e}"), ())
        try:
            scored = score_task(model, task, cell.noise, cell.seed, noise_target=cell.noise_target,
                                batch_size=self.options.batch_size, dtype=self.options.dtype, task_spec=cell.task)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # a cell that cannot be scored fails alone
            return tasks_io.TaskCellRecord(inputs, _failed(cell, task, describe_error(e), model), ())
        if inputs and model.fingerprint != inputs["model_fingerprint"]:  # a file changed while the run went on
            inputs = {**inputs, "model_fingerprint": model.fingerprint}
        return tasks_io.TaskCellRecord(inputs, scored.result, tuple(scored.items))

    def keep(self, out, cell, inputs, part) -> None:
        pass  # a task cell is scored whole: nothing of an unfinished one is kept

    def part_json(self, part):
        raise NotImplementedError("task cells are not split over ranks")

    part_from_json = part_json

    def finish(self, out, cell, decision: dict, parts: list, world_size: int):
        return parts[0]

    def write(self, out: Path, record) -> None:
        tasks_io.write_task_cell(out, record)

    def line(self, record, seconds: float, decision: dict, world_size: int) -> str:
        r = record.result
        if not r.ok:
            return f"FAILED: {r.error}"
        acc, norm = ACCURACIES[PRIMARY_ACCURACY], ACCURACIES["acc_norm"]
        return f"{acc.label} {acc.format(r.acc)}, {norm.label} {norm.format(r.acc_norm)} ({seconds:.1f} s)"

    def listing(self, records: list) -> list:
        return [r.result.to_json() for r in records]

    def manifest(self, grid, options, described, started, finished, ranks) -> dict:
        return _manifest(grid, self.tasks, options, described, started, finished)

    def close(self, out: Path, records: list) -> list:
        summary = noise_averages([(r.result, list(r.items)) for r in records])
        results_io.write_json_atomic(out / SUMMARY_FILE, summary)
        return summary


def execute_tasks(grid: list[TaskCell], tasks: dict, options: TaskRunOptions) -> Outcome:
    """Score every task cell of the grid not already stored with the same inputs (grid.execute). `tasks`: spec ->
    Task."""
    return execute_grid(TaskCells(tasks, options), grid, options)


SUMMARY_FILE = "task_summary.json"


def noise_averages(cells: list[tuple[TaskResult, list]], confidence: float = 0.95) -> list[dict]:
    """Per (model, task): clean accuracy and the noise average, the mean accuracy over every noised cell of the
    run (noises x targets x seeds: BLT's "Noise Avg." over its 15 variants when the run is `--suite blt
    --noise-target all`), with a bootstrap interval over items (each item's share of variants it got right),
    the drop from clean and TokSuite's relative drop (clean - noised) / clean."""
    groups: dict[tuple, list[tuple[TaskResult, list]]] = {}
    for r, items in cells:
        if r.ok:
            groups.setdefault((r.model_spec, r.task_spec), []).append((r, items))
    out = []
    for (model, task), group in groups.items():
        clean = next((r for r, _ in group if r.is_clean), None)
        noised = [(r, items) for r, items in group if not r.is_clean]
        if clean is None or not noised:
            continue
        right = np.mean([accuracy_columns(items)[PRIMARY_ACCURACY] for _, items in noised], axis=0)
        interval = stats.bootstrap(resampled.accuracy(right), len(right), confidence=confidence)
        out.append({"model": model, "task": task, "items": clean.items, "clean_acc": clean.acc,
                    "variants": len(noised), "noises": sorted({r.noise for r, _ in noised}),
                    "noise_targets": sorted({r.noise_target for r, _ in noised}),
                    **interval.as_dict("noise_avg_acc"), "drop": clean.acc - interval.estimate,
                    "relative_drop": (clean.acc - interval.estimate) / clean.acc if clean.acc else None})
    return out


def format_task_summary(results: list[TaskResult], summary: list[dict] = ()) -> str:
    """A plain-text table for the terminal: accuracy and its interval and the drop from clean per cell, then
    each (model, task)'s noise average (noise_averages)."""
    acc, norm = ACCURACIES[PRIMARY_ACCURACY], ACCURACIES["acc_norm"]
    clean = {(r.model_spec, r.task_spec): r for r in results if r.is_clean and r.ok}
    header = ["model", "task", "noise", "target", "seed", acc.label, "interval", "drop", norm.label, "status"]
    right = range(header.index("seed"), header.index(norm.label) + 1)  # the numbers' columns
    body = []
    for r in results:
        base = clean.get((r.model_spec, r.task_spec))
        drop = format_signed(base.acc - r.acc, acc.format) if r.ok and base is not None and not r.is_clean else ""
        interval = f"[{acc.format(r.acc_low)}, {acc.format(r.acc_high)}]" if r.ok else ""
        body.append([r.model, r.task, r.noise, "" if r.is_clean else r.noise_target, str(r.seed),
                     acc.format(r.acc) if r.ok else NA, interval, drop, norm.format(r.acc_norm) if r.ok else NA,
                     "ok" if r.ok else f"FAILED: {r.error}"])
    lines = [text_table(header, body, set(right))]
    for row in summary:
        relative = "" if row["relative_drop"] is None else f", relative drop {row['relative_drop']:.1%}"
        average = f"{acc.format(row['noise_avg_acc'])} [{acc.format(row['noise_avg_acc_low'])}, " \
                  f"{acc.format(row['noise_avg_acc_high'])}]"
        lines.append(f"\n{row['model']} | {row['task']}: clean {acc.label} {acc.format(row['clean_acc'])}; noise "
                     f"average {average} over {row['variants']} noised cells{relative} ({SUMMARY_FILE})")
    return "\n".join(lines)
