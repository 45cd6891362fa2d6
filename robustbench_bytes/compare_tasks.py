"""The CI gate's task part: a candidate run's multiple-choice accuracy against the baseline's, paired over items.

Task cells are matched by (task sha256, noise, seed, noise_choices), and by model too when either run holds
several models (as compare.py matches perplexity cells). For each pair a paired bootstrap over items (the same
item draws on both sides) gives Δacc = candidate acc − baseline acc. A pair REGRESSES when the upper bound of
Δacc is below −max_acc_drop (the drop is both larger than allowed and statistically clear of it), or when the
candidate's cell failed where the baseline's succeeded; it IMPROVES when the lower bound is above 0.
Fails closed like compare.py: a baseline task cell the candidate lacks, or a baseline cell that failed, is a gap
(exit 2 unless allow_missing). Runs without task cells give an empty comparison (exit 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robustbench_bytes import stats, tasks_io
from robustbench_bytes.compare import gate_exit_code, pair_by_model
from robustbench_bytes.errors import BadInput, NotComparable
from robustbench_bytes.task_scoring import accuracy_metric


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


@dataclass
class TaskComparison:
    pairs: list[TaskPair]
    max_acc_drop: float
    confidence: float
    allow_missing: bool
    only_baseline: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[TaskPair]:
        return [p for p in self.pairs if p.verdict == "regressed"]

    @property
    def gaps(self) -> list[str]:
        return ([f"{c} (missing from the candidate)" for c in self.only_baseline]
                + [f"{p.model} / {p.task} / {p.noise} ({'; '.join(p.reasons)})"
                   for p in self.pairs if p.verdict == "not compared"])

    @property
    def exit_code(self) -> int:
        return gate_exit_code(bool(self.regressions), bool(self.gaps), self.allow_missing)


def _index(results, by_model: bool) -> dict:
    index = {}
    for r in results:
        key = (r.task_sha256 or r.task, r.noise, r.seed, r.noise_choices)
        index.setdefault(((r.model_spec,) if by_model else ()) + key, r)
    return index


def compare_task_runs(baseline: Path | str, candidate: Path | str, *, max_acc_drop: float = 0.02,
                      confidence: float = 0.95, replicates: int = stats.DEFAULT_REPLICATES,
                      allow_missing: bool = False) -> TaskComparison:
    if not (math.isfinite(max_acc_drop) and 0 <= max_acc_drop <= 1):
        raise BadInput(f"max_acc_drop={max_acc_drop}: expected a number in [0, 1]")
    base_results, cand_results = tasks_io.read_task_results(baseline), tasks_io.read_task_results(candidate)
    comparison = TaskComparison([], max_acc_drop, confidence, allow_missing)
    if not base_results:
        return comparison
    by_model = pair_by_model(base_results, cand_results)
    base_index, cand_index = _index(base_results, by_model), _index(cand_results, by_model)
    for key, base in base_index.items():
        name = f"{base.model} / {base.task} / {base.noise} (seed {base.seed})"
        cand = cand_index.get(key)
        if cand is None:
            comparison.only_baseline.append(name)
            continue
        pair = TaskPair(base.model if by_model else f"{base.model} → {cand.model}", base.task, base.noise, base.seed,
                        baseline_acc=base.acc)
        comparison.pairs.append(pair)
        if not base.ok:
            pair.verdict, pair.reasons = "not compared", [f"baseline cell failed ({base.error})"]
            continue
        if not cand.ok:
            pair.verdict, pair.reasons = "regressed", [f"candidate cell failed: {cand.error}"]
            continue
        pair.candidate_acc = cand.acc
        b_items, c_items = tasks_io.read_task_items(baseline, base), tasks_io.read_task_items(candidate, cand)
        if [i.label for i in b_items] != [i.label for i in c_items]:
            raise NotComparable(f"{name}: the two runs' items differ; runs must score the same task")
        b_metric = accuracy_metric(np.array([i.correct for i in b_items], dtype=np.float64))
        c_metric = accuracy_metric(np.array([i.correct for i in c_items], dtype=np.float64))
        pair.delta = stats.bootstrap(stats.difference(c_metric, b_metric), len(b_items), confidence=confidence,
                                     replicates=replicates)
        if pair.delta.high < -max_acc_drop:
            pair.verdict = "regressed"
            pair.reasons.append(f"accuracy down by {-pair.delta.estimate:.3f} (interval high {pair.delta.high:+.3f} "
                                f"< -{max_acc_drop:g})")
        elif pair.delta.low > 0:
            pair.verdict = "improved"
    return comparison


def markdown(comparison: TaskComparison) -> str:
    if not comparison.pairs and not comparison.only_baseline:
        return ""
    pct = f"{comparison.confidence:.0%}"
    lines = ["", "### Multiple-choice accuracy", "",
             f"A task cell regresses when the upper bound of the {pct} paired-bootstrap interval (over items) of "
             f"Δacc is below -{comparison.max_acc_drop:g}, or when the candidate's cell failed: "
             f"{len(comparison.regressions)} of {len(comparison.pairs)} regressed.", "",
             f"| model | task | noise | seed | acc (base → cand) | Δacc [{pct}] | verdict |",
             "|---|---|---|---:|---:|---:|---|"]
    for p in comparison.pairs:
        acc = " → ".join("–" if v is None else f"{v:.3f}" for v in (p.baseline_acc, p.candidate_acc))
        delta = "–" if p.delta is None else f"{p.delta.estimate:+.3f} [{p.delta.low:+.3f}, {p.delta.high:+.3f}]"
        verdict = p.verdict + (": " + "; ".join(p.reasons) if p.reasons else "")
        lines.append(f"| {p.model} | {p.task} | `{p.noise}` | {p.seed} | {acc} | {delta} | {verdict} |")
    if comparison.only_baseline:
        lines += ["", "Not compared, missing from the candidate run: " + ", ".join(comparison.only_baseline) + "."]
    return "\n".join(lines) + "\n"
