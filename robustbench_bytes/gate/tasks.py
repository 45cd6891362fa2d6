"""The CI gate's task part: a candidate run's multiple-choice accuracy against the baseline's, paired over items.

Task cells are matched by (task sha256, noise, seed, what the noise changed), and by model too when either run holds
several models (rules.model_key, the key perplexity cells pair by). The accuracy gated is GATED, an entry of the
metric table's ACCURACIES (acc): for each pair a paired bootstrap over items (the same item draws on both sides)
gives Δacc = candidate acc − baseline acc, from each item's right/wrong column (task_schema.accuracy_columns).
A pair REGRESSES when the upper bound of Δacc is below −max_acc_drop (the drop is both larger than allowed and
statistically clear of it), or when the candidate's cell failed where the baseline's succeeded; it IMPROVES when
the lower bound is above 0. Fails closed like the perplexity cells (cells.py): a baseline task cell the candidate
lacks, or a baseline cell that failed, is a gap (exit 2 unless allow_missing); a stored task cell whose
accuracies, intervals, predictions or labels do not follow from its per-item records is refused (exit 2). Runs
without task cells give an empty comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robustbench_bytes import stats
from robustbench_bytes.errors import NotComparable
from robustbench_bytes.formatting import format_interval, format_signed
from robustbench_bytes.gate.outputs import check_json, model_column, verdict_text
from robustbench_bytes.gate.rules import Thresholds, model_key, pair_by_model
from robustbench_bytes.gate.stored import check_failed_cell_name, check_types, refuse, stored_problem
from robustbench_bytes.gate.verdict import Verdicts
from robustbench_bytes.results import metrics, resampled, task_schema, tasks_io

GATED = metrics.ACCURACIES[metrics.PRIMARY_ACCURACY]  # the accuracy the gate thresholds on (max_acc_drop)


@dataclass
class TaskPair:
    model: str
    task: str
    noise: str
    seed: int
    baseline_acc: float | None = None
    candidate_acc: float | None = None
    delta: stats.Interval | None = None
    verdict: str = "unchanged"
    reasons: list[str] = field(default_factory=list)
    key: dict = field(default_factory=dict)
    specs: tuple[str, str] = ("", "")  # (baseline, candidate) model as the runs named it
    models: tuple[str, str] = ("", "")  # and as results name it (display names)
    cells: tuple[str, str] = ("", "")

    @property
    def name(self) -> str:
        return f"{self.model} / {self.task} / {self.noise} / seed {self.seed}"


@dataclass
class TaskComparison(Verdicts):
    pairs: list[TaskPair]
    thresholds: Thresholds
    only_baseline: list[str] = field(default_factory=list)

    def records(self) -> list[dict]:
        return task_records(self)

    def markdown(self) -> str:
        return markdown(self)


_KEY_FIELDS = ("model", "task_sha256", "noise", "seed", "noise_target")


def _index(results, by_model: bool) -> dict:
    index = {}
    for r in results:
        key = (r.task_sha256 or r.task, r.noise, r.seed, r.noise_target)
        index.setdefault(((model_key(r),) if by_model else ()) + key, r)
    return index


def _items(run_dir: Path, result, side: str):
    """The per-item records of a listed ok task cell, after checking that what the listing says of the cell
    follows from them (stored.stored_problem); NotComparable naming the run, the cell and the fault otherwise."""
    cell = result.extra.get("cell") or result.cell
    record = tasks_io.read_task_cell(run_dir, cell)
    if record is None:
        tasks_io.read_task_items(run_dir, result)  # raises the reason: missing, not JSON, no item list
        raise refuse(side, run_dir, cell, f"{tasks_io.task_cell_path(run_dir, cell)} is not a readable task cell file")
    why = stored_problem(result, record, cell)
    if why:
        raise refuse(side, run_dir, cell, why)
    return sorted(record.items, key=lambda i: i.index)


def compare_task_runs(baseline: Path | str, candidate: Path | str,
                      thresholds: Thresholds = Thresholds()) -> TaskComparison:
    baseline, candidate = Path(baseline), Path(candidate)
    base_results, cand_results = tasks_io.read_task_results(baseline), tasks_io.read_task_results(candidate)
    check_types(base_results, "baseline", baseline, task_schema.TASKS_FILE)
    check_types(cand_results, "candidate", candidate, task_schema.TASKS_FILE)
    items = {}  # (side, cell) -> its verified item records
    for side, run_dir, results in (("baseline", baseline, base_results), ("candidate", candidate, cand_results)):
        for r in results:  # every listed cell, paired or not: an edited label would otherwise unpair it unseen
            if r.ok:
                items[side, r.extra.get("cell") or r.cell] = _items(run_dir, r, side)
            else:
                check_failed_cell_name(r, side, run_dir)
    comparison = TaskComparison([], thresholds)
    if not base_results:
        return comparison
    by_model = pair_by_model(base_results, cand_results)
    base_index, cand_index = _index(base_results, by_model), _index(cand_results, by_model)
    for key, base in base_index.items():
        cand = cand_index.get(key)
        if cand is None:
            comparison.only_baseline.append(f"{base.model} / {base.task} / {base.noise} (seed {base.seed})")
            continue
        comparison.pairs.append(_compare_pair(key, base, cand, items, thresholds, by_model))
    return comparison


def _compare_pair(key, base, cand, items: dict, th: Thresholds, by_model: bool) -> TaskPair:
    pair = TaskPair(base.model if by_model else f"{base.model} → {cand.model}", base.task, base.noise, base.seed,
                    baseline_acc=getattr(base, GATED.name), key=dict(zip(_KEY_FIELDS[0 if by_model else 1:], key)),
                    specs=(base.model_spec, cand.model_spec), models=(base.model, cand.model),
                    cells=(base.extra.get("cell") or base.cell, cand.extra.get("cell") or cand.cell))
    if not base.ok:
        pair.verdict, pair.reasons = "not compared", [f"baseline cell failed ({base.error})"]
        return pair
    if not cand.ok:
        pair.verdict, pair.reasons = "regressed", [f"candidate cell failed: {cand.error}"]
        return pair
    pair.candidate_acc = getattr(cand, GATED.name)
    b_items, c_items = items["baseline", pair.cells[0]], items["candidate", pair.cells[1]]
    if [i.label for i in b_items] != [i.label for i in c_items]:
        raise NotComparable(f"{pair.name}: the two runs' items differ; runs must score the same task")
    b_right, c_right = (task_schema.accuracy_columns(i)[GATED.name] for i in (b_items, c_items))
    if b_right is None or c_right is None:  # records that predate this accuracy's predictions
        pair.verdict, pair.reasons = "not compared", [f"item records without {GATED.name} predictions"]
        return pair
    b_metric = resampled.accuracy(np.array(b_right, dtype=np.float64))
    c_metric = resampled.accuracy(np.array(c_right, dtype=np.float64))
    pair.delta = stats.bootstrap(stats.difference(c_metric, b_metric), len(b_items), confidence=th.confidence,
                                 replicates=th.replicates)
    if pair.delta.high < -th.max_acc_drop:
        pair.verdict = "regressed"
        pair.reasons.append(f"accuracy down by {GATED.format(-pair.delta.estimate)} (interval high "
                            f"{_signed(pair.delta.high)} < -{th.max_acc_drop:g})")
    elif pair.delta.low > 0:
        pair.verdict = "improved"
    return pair


def task_records(comparison: TaskComparison) -> list[dict]:
    """Every task pair as the JSON output lists it."""
    records = [{"kind": "task", "name": f"{label} / {p.task} / {p.noise} / seed {p.seed}", "key": p.key,
                "baseline": {"model": p.specs[0], "cell": p.cells[0]},
                "candidate": {"model": p.specs[1], "cell": p.cells[1]},
                "checks": [check_json(GATED.name, p.baseline_acc, p.candidate_acc, p.delta,
                                      -comparison.thresholds.max_acc_drop, "delta.high < threshold")],
                "verdict": p.verdict, "reasons": list(p.reasons)}
               for p, label in zip(comparison.pairs, model_column(comparison.pairs))]
    return records + [{"kind": "task", "name": c, "verdict": "not compared", "reasons": ["missing from the candidate"]}
                      for c in comparison.only_baseline]


def _signed(value: float | None) -> str:
    """A change in the gated accuracy, as its table entry writes it, signed."""
    return format_signed(value, GATED.format)


def markdown(comparison: TaskComparison) -> str:
    if comparison.empty:
        return ""
    th = comparison.thresholds
    pct = f"{th.confidence:.0%}"
    lines = ["", "### Multiple-choice accuracy", "",
             f"A task cell regresses when the upper bound of the {pct} paired-bootstrap interval (over items) of "
             f"Δ{GATED.label} is below -{th.max_acc_drop:g}, or when the candidate's cell failed: "
             f"{len(comparison.regressions)} of {len(comparison.pairs)} regressed.", "",
             f"| model | task | noise | seed | {GATED.label} (base → cand) | Δ{GATED.label} [{pct}] | verdict |",
             "|---|---|---|---:|---:|---:|---|"]
    for p, label in zip(comparison.pairs, model_column(comparison.pairs)):
        acc = f"{GATED.format(p.baseline_acc)} → {GATED.format(p.candidate_acc)}"
        lines.append(f"| {label.replace('|', '/')} | {p.task} | `{p.noise}` | {p.seed} | {acc} | "
                     f"{format_interval(p.delta, _signed)} | {verdict_text(p.verdict, p.reasons)} |")
    if comparison.only_baseline:
        lines += ["", "Not compared, missing from the candidate run: " + ", ".join(comparison.only_baseline) + "."]
    return "\n".join(lines) + "\n"
