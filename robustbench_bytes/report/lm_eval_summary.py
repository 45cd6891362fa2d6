"""The task cells of a folder `robustbench lm-eval` wrote, read from its lm_eval.json: accuracies without per-item
records (so without intervals)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from robustbench_bytes.errors import BadInput
from robustbench_bytes.files import read_json
from robustbench_bytes.results import metrics

LM_EVAL_SUMMARY = "lm_eval.json"  # what `robustbench lm-eval` lists: one entry per (task, noise, target, seed)
LM_EVAL_DIR = "lm_eval"


@dataclass(frozen=True)
class SummaryCell:
    """A task cell known only by its accuracies (an entry of lm_eval.json): no per-item records, so no interval.
    accuracies: each accuracy of the metric table (metrics.ACCURACIES) by name, nan where the entry lacks it."""

    task: str
    model: str
    noise: str
    seed: int
    items: int
    accuracies: dict = field(default_factory=dict, hash=False)
    noise_target: str = "context"
    level: str | None = None
    architecture: str | None = None
    choices: int | None = None
    ok: bool = True

    @property
    def model_spec(self) -> str:
        return self.model

    @property
    def task_spec(self) -> str:
        return self.task


def _number(entry: dict, key: str) -> float:
    value = entry.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def read_lm_eval_cells(run_dir: Path) -> list[SummaryCell]:
    """The task cells of a folder `robustbench lm-eval` wrote (lm_eval.json, and the item count each evaluation
    stored); [] without lm_eval.json. BadInput when the file is not a list of entries."""
    path = Path(run_dir) / LM_EVAL_SUMMARY
    if not path.is_file():
        return []
    entries = read_json(path)
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise BadInput(f"{path}: expected a JSON list of objects (one per task, noise and seed)")
    cells = []
    for i, e in enumerate(entries):
        if not all(isinstance(e.get(k), str) for k in ("model", "task", "noise")) or not isinstance(e.get("seed"), int):
            raise BadInput(f"{path}: entry {i}: expected string model, task and noise and an integer seed")
        cells.append(SummaryCell(e["task"], e["model"], e["noise"], e["seed"], _lm_eval_items(run_dir, e),
                                 {name: _number(e, name) for name in metrics.ACCURACIES},
                                 e.get("noise_target") or "context"))
    return cells


def _lm_eval_items(run_dir: Path, entry: dict) -> int:
    """The items lm-eval evaluated for this entry's task (its stored evaluation's n_samples), 0 when unknown."""
    path = Path(run_dir) / LM_EVAL_DIR / f"{entry.get('cell')}.json"
    try:
        samples = (read_json(path) or {}).get("n_samples") or {}
        count = (samples.get(entry["task"]) or {}).get("effective")
    except (BadInput, OSError, AttributeError):
        return 0
    return count if isinstance(count, int) else 0
