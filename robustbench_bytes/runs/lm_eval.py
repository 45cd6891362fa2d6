"""lm-eval cells, a kind of grid.py's executor (LmEvalCells): one lm-evaluation-harness evaluation of one model on
the tasks asked for, under one noise, target and seed.

A cell's key is the sha256 of its inputs (the model's files, the tasks' names and files, the noise and its code, the
seed, the target, few-shot count, limit, dtype, lm-eval's and our scoring versions), cut to 16 hex digits; it is
stored as lm_eval/<key>.json (robustbench-lm-eval-cell/1: inputs, lm-eval's per-task metrics, versions, sample
counts), listed in lm_eval.json one row per task, and the grid is recorded in lm_eval/manifest.json. A failed
evaluation leaves no file and no row: the run goes on and exits 1. Scored whole, in one process.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from robustbench_bytes import results as results_io
from robustbench_bytes.runs.grid import GridOptions, single_share
from robustbench_bytes.results.schema import CLEAN, CLEAN_SEED
from robustbench_bytes.runs.models import ModelCache, ModelUnavailable

LM_EVAL_FILE = "lm_eval.json"
LM_EVAL_DIR = "lm_eval"
LM_EVAL_FORMAT = "robustbench-lm-eval/1"  # lm_eval/manifest.json
LM_EVAL_CELL_FORMAT = "robustbench-lm-eval-cell/1"


@dataclass(frozen=True, eq=False)
class LmEvalCell:
    """One evaluation of the grid: its inputs say everything, its key is their digest."""

    inputs: dict

    model = property(lambda self: self.inputs["model"])
    noise = property(lambda self: self.inputs["noise"])
    seed = property(lambda self: self.inputs["seed"])
    noise_target = property(lambda self: self.inputs["noise_target"])

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.inputs, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class LmEvalResult:
    """What one evaluation gave: lm-eval's metrics per task (results), or why it failed (error)."""

    cell: LmEvalCell
    results: dict = field(default_factory=dict)  # task -> {metric: number}
    versions: dict | None = None
    n_samples: dict | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class LmEvalRecord:
    inputs: dict | None
    result: LmEvalResult


@dataclass
class LmEvalOptions(GridOptions):
    dtype: str = "auto"
    tasks: list = field(default_factory=list)
    tasks_sha256: str = ""
    include_path: str | None = None
    num_fewshot: int | None = None
    limit: int | None = None
    manager: object = None  # lm-eval's TaskManager


def build_lm_eval_grid(model: str, model_fingerprint: str, noises: list[str], seeds: list[int], targets: tuple,
                       options: LmEvalOptions) -> list[LmEvalCell]:
    """The clean evaluation, then every target x noise x seed; each cell's inputs are everything that decides it."""
    import lm_eval as harness

    from robustbench_bytes.runs.fingerprint import noise_code_sha256
    from robustbench_bytes.scoring.tasks import TASK_SCORING_VERSION

    seeds = list(dict.fromkeys(seeds)) or [0]
    settings = [(CLEAN, "context", CLEAN_SEED)] + [(spec, target, seed) for target in targets for spec in noises
                                                   for seed in seeds]
    return [LmEvalCell({"model": model, "model_fingerprint": model_fingerprint, "tasks": options.tasks,
                        "noise": spec, "seed": seed, "noise_target": target, "num_fewshot": options.num_fewshot,
                        "limit": options.limit, "dtype": options.dtype,
                        "lm_eval": getattr(harness, "__version__", None), "tasks_sha256": options.tasks_sha256,
                        "scoring_version": TASK_SCORING_VERSION,
                        **({"noise_code_sha256": noise_code_sha256(spec, seed)} if spec != CLEAN else {})})
            for spec, target, seed in settings]


def _metrics(task_results: dict) -> dict:
    """lm-eval's per-task numbers (`acc,none` -> acc), JSON-safe; its alias and sample counts dropped."""
    out = {}
    for key, value in task_results.items():
        if key == "alias" or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        name, _, filt = key.partition(",")
        out[name if filt in ("", "none") else f"{name},{filt}"] = value
    return out


class LmEvalCells:
    """lm-eval cells (grid.CellKind); see the module."""

    name = "lm-eval"
    list_file = LM_EVAL_FILE
    manifest_file = f"{LM_EVAL_DIR}/{results_io.MANIFEST_FILE}"
    shardable = False

    def __init__(self, options: LmEvalOptions):
        self.options = options

    def plan(self, grid: list[LmEvalCell], models: ModelCache) -> dict:
        return {"cells": [c.key for c in grid]}

    def describe(self, cell: LmEvalCell) -> str:
        return f"{cell.model} | {cell.noise} ({cell.noise_target}) | seed {cell.seed}"

    def inputs(self, cell: LmEvalCell, model: dict) -> dict | None:
        return cell.inputs

    def path(self, out: Path, cell: LmEvalCell) -> Path:
        return out / LM_EVAL_DIR / f"{cell.key}.json"

    def stored(self, out: Path, cell: LmEvalCell) -> LmEvalRecord | None:
        raw = results_io.read_record(self.path(out, cell), (LM_EVAL_CELL_FORMAT,))
        if raw is None:
            return None
        return LmEvalRecord(raw.get("inputs"), LmEvalResult(cell, raw.get("results"), raw.get("versions"),
                                                            raw.get("n_samples")))

    def problem(self, record: LmEvalRecord, cell: LmEvalCell) -> str | None:
        """A stored evaluation whose results are not task -> {metric: number}."""
        results = record.result.results
        if not isinstance(results, dict) or not results:
            return "no per-task results"
        for task, metrics in results.items():
            if not isinstance(metrics, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                        for v in metrics.values()):
                return f"task {task}: expected metric -> number"
        return None

    def shares(self, out, cell, inputs, world_size: int) -> dict:
        return single_share(world_size)

    def score(self, models: ModelCache, cell: LmEvalCell, inputs: dict | None, share, desc: str) -> LmEvalRecord:
        from robustbench_bytes.errors import RunFailed
        from robustbench_bytes.integrations.lm_eval import RobustbenchLM

        o = self.options
        try:
            model = models.get(cell.model)
        except ModelUnavailable as e:
            return LmEvalRecord(inputs, LmEvalResult(cell, error=f"cannot load model: {e}"))
        lm = RobustbenchLM(loaded=model, dtype=o.dtype, batch_size=o.batch_size, noise=cell.noise, seed=cell.seed,
                           noise_target=cell.noise_target)
        try:
            got = evaluate(lm, o.tasks, o.num_fewshot, o.limit, o.manager, cell.noise, cell.seed)
        except RunFailed as e:  # a cell that cannot be scored fails alone
            return LmEvalRecord(inputs, LmEvalResult(cell, error=str(e)))
        return LmEvalRecord(inputs, LmEvalResult(cell, {t: _metrics(r) for t, r in got["results"].items()},
                                                 got.get("versions"), got.get("n-samples")))

    def keep(self, out, cell, inputs, part) -> None:
        pass  # an evaluation is scored whole: nothing of an unfinished one is kept

    def part_json(self, part):
        raise NotImplementedError("lm-eval cells are not split over ranks")

    part_from_json = part_json

    def finish(self, out, cell, decision: dict, parts: list, world_size: int) -> LmEvalRecord:
        return parts[0]

    def write(self, out: Path, record: LmEvalRecord) -> None:
        r = record.result
        if r.ok:
            results_io.write_json_atomic(self.path(out, r.cell), {
                "format": LM_EVAL_CELL_FORMAT, "inputs": record.inputs, "results": r.results,
                "versions": r.versions, "n_samples": r.n_samples})

    def line(self, record: LmEvalRecord, seconds: float, decision: dict, world_size: int) -> str:
        r = record.result
        if not r.ok:
            return f"FAILED: {r.error}"
        return "; ".join(f"{task}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if "stderr" not in k)
                         for task, metrics in r.results.items()) + f" ({seconds:.1f} s)"

    def listing(self, records: list[LmEvalRecord]) -> list[dict]:
        """One row per task of each evaluation that succeeded."""
        return [{"model": c.model, "task": task, "noise": c.noise, "seed": c.seed, "noise_target": c.noise_target,
                 "cell": c.key, **metrics}
                for r in records if r.result.ok for c in [r.result.cell] for task, metrics in r.result.results.items()]

    def manifest(self, grid, options, described, started, finished, ranks) -> dict:
        from robustbench_bytes.results import provenance

        o = self.options
        model = grid[0].model if grid else None
        seeds = list(dict.fromkeys(c.seed for c in grid if c.noise != CLEAN)) or [0]
        return {"format": LM_EVAL_FORMAT, **provenance.software_record(),
                "device": provenance.device_description(o.device), "model": model,
                "model_fingerprint": grid[0].inputs["model_fingerprint"] if grid else None, "tasks": o.tasks,
                "tasks_sha256": o.tasks_sha256, "include_path": o.include_path,
                "noises": list(dict.fromkeys(c.noise for c in grid)), "seeds": seeds,
                "cells": [c.key for c in grid], "command_line": o.command_line, "started": started,
                "finished": finished}

    def close(self, out: Path, records: list) -> list:
        return []


def evaluate(lm, tasks, num_fewshot, limit, manager, spec, seed) -> dict:
    """lm-eval's simple_evaluate, its git lookup silenced (it runs `git describe` in the working directory and
    lets git print "fatal: not a git repository" outside one); what it raises becomes RunFailed with one line."""
    from unittest import mock

    import lm_eval as harness
    from lm_eval import evaluator

    from robustbench_bytes.errors import RunFailed
    from robustbench_bytes.runs.models import describe_error

    try:
        with mock.patch.object(evaluator, "get_git_commit_hash", _quiet_git_hash):
            return harness.simple_evaluate(model=lm, tasks=tasks, num_fewshot=num_fewshot, limit=limit,
                                           task_manager=manager, log_samples=False)
    except (KeyboardInterrupt, RunFailed):
        raise
    except Exception as e:
        raise RunFailed(f"lm-eval on {', '.join(tasks)} under {spec} (seed {seed}): {describe_error(e)}") from None


def _quiet_git_hash() -> str | None:
    import subprocess

    try:
        done = subprocess.run(["git", "describe", "--always"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None
