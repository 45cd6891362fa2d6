"""The report's task part: accuracy under each noise per model and task, with bootstrap intervals over items,
as Markdown tables, a CSV and a plot. Run directories without task cells add nothing.

acc is tasks.json's number (the mean over seeds when a noise has several); the interval comes from a bootstrap
over items of the per-item records, and the drop (clean acc - noisy acc) resamples the same items for both,
so its interval is paired.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robustbench_bytes import stats

from robustbench_bytes.results import tasks_io
from robustbench_bytes.errors import BadInput
from robustbench_bytes.files import atomic_path
from robustbench_bytes.report.table import FEW_DOCUMENTS, MIN_DOCUMENTS, leaderboard_entry, rank_leaderboard
from robustbench_bytes.results.schema import CLEAN
from robustbench_bytes.scoring.tasks import accuracy_metric

CSV_NAME = "tasks.csv"
LM_EVAL_SUMMARY = "lm_eval.json"  # what `robustbench lm-eval` lists: one entry per (task, noise, target, seed)
LM_EVAL_DIR = "lm_eval"


@dataclass(frozen=True)
class SummaryCell:
    """A task cell known only by its accuracies (an entry of lm_eval.json): no per-item records, so no interval."""

    task: str
    model: str
    noise: str
    seed: int
    items: int
    acc: float
    acc_norm: float
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
    from robustbench_bytes.files import read_json

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
                                 _number(e, "acc"), _number(e, "acc_norm"), e.get("noise_target") or "context"))
    return cells


def _lm_eval_items(run_dir: Path, entry: dict) -> int:
    """The items lm-eval evaluated for this entry's task (its stored evaluation's n_samples), 0 when unknown."""
    from robustbench_bytes.files import read_json

    path = Path(run_dir) / LM_EVAL_DIR / f"{entry.get('cell')}.json"
    try:
        samples = (read_json(path) or {}).get("n_samples") or {}
        count = (samples.get(entry["task"]) or {}).get("effective")
    except (BadInput, OSError, AttributeError):
        return 0
    return count if isinstance(count, int) else 0


def _noise_label(cell) -> str:
    """The noise as the report names it: the spec, with what it noised when not the context alone."""
    target = getattr(cell, "noise_target", "context") or "context"
    return cell.noise if cell.noise == CLEAN or target == "context" else f"{cell.noise} ({target})"


def _items(run_dir: Path, cells) -> list | None:
    """The per-item records of each cell, or None where a cell has none (e.g. a folder that lists task cells
    without their item files): its row keeps tasks.json's accuracy, without an interval."""
    if any(isinstance(c, SummaryCell) for c in cells):
        return None
    try:
        return [tasks_io.read_task_items(run_dir, c) for c in cells]
    except BadInput:
        return None


def _accuracy(field: str):
    """The bootstrap metric of an accuracy over one cell's items (field: correct or correct_norm)."""
    def of(records):
        return accuracy_metric(np.array([getattr(i, field) for i in records], dtype=np.float64))
    return of


def _chance(cells, items) -> float:
    """1 / number of choices, averaged over items (from the records; else from tasks.json's choice count)."""
    if items:
        return float(np.mean([1.0 / len(i.loglikelihoods) for i in items[0]]))
    first = cells[0]
    return first.items / first.choices if first.choices else math.nan


def build_task_tables(run_dirs, options):
    """(table, leaderboards): one row per (run, model, task, noise) with acc and acc_norm, their intervals and
    the paired drop from clean; and per task a Leaderboard ranked by mean noised accuracy."""
    import pandas as pd

    rows, entries = [], {}
    several = len(run_dirs) > 1
    kwargs = dict(confidence=options.confidence, replicates=options.replicates, seed=options.seed)
    for run_dir in run_dirs:
        groups: dict[tuple, list] = {}
        for r in tasks_io.read_task_results(run_dir) + read_lm_eval_cells(run_dir):
            if r.ok:
                groups.setdefault((r.model_spec, r.task_spec), {}).setdefault(_noise_label(r), []).append(r)
        for (model, task), by_noise in groups.items():
            if CLEAN not in by_noise:
                continue
            label = by_noise[CLEAN][0].model + (f" [{Path(run_dir).name}]" if several else "")
            clean_items = _items(run_dir, by_noise[CLEAN][:1])
            n = by_noise[CLEAN][0].items
            noisy_metrics, paired = [], clean_items is not None
            for noise in [CLEAN] + [x for x in by_noise if x != CLEAN]:
                cells = by_noise[noise]
                items = _items(run_dir, cells)
                if items is not None and (clean_items is None or any(len(x) != n for x in items)):
                    items = None
                row = {"run": str(run_dir), "model": label, "task": cells[0].task, "noise": noise,
                       "seeds": len(cells), "items": n, "level": cells[0].level,
                       "architecture": cells[0].architecture, "chance": _chance(cells, items)}
                for name, field in (("acc", "correct"), ("acc_norm", "correct_norm")):
                    point = float(np.mean([getattr(c, name) for c in cells]))
                    row.update(stats.Interval(point, math.nan, math.nan, options.confidence).as_dict(name))
                    if noise != CLEAN:
                        clean_point = float(np.mean([getattr(c, name) for c in by_noise[CLEAN]]))
                        row.update(stats.Interval(clean_point - point, math.nan, math.nan,
                                                  options.confidence).as_dict(f"{name}_drop"))
                    if items is None:
                        continue
                    metric = _accuracy(field)
                    noisy = stats.mean_of([metric(x) for x in items])
                    row.update(stats.bootstrap(noisy, n, **kwargs).as_dict(name))
                    if noise != CLEAN:
                        row.update(stats.bootstrap(stats.difference(metric(clean_items[0]), noisy), n,
                                                   **kwargs).as_dict(f"{name}_drop"))
                if noise != CLEAN:
                    paired = paired and items is not None
                    noisy_metrics.append(None if items is None
                                         else stats.mean_of([_accuracy("correct")(x) for x in items]))
                rows.append(row)
            task_rows = [r for r in rows if r["run"] == str(run_dir) and r["model"] == label
                         and r["task"] == by_noise[CLEAN][0].task]
            noisy_rows = [r for r in task_rows if r["noise"] != CLEAN]
            entries.setdefault(by_noise[CLEAN][0].task, []).append(leaderboard_entry(
                label=label, model=by_noise[CLEAN][0].model, run=str(run_dir), level=task_rows[0]["level"],
                architecture=task_rows[0]["architecture"], documents=n, noises=len(noisy_rows),
                noised_values=[r["acc"] for r in noisy_rows], clean_value=task_rows[0]["acc"],
                noised_metrics=noisy_metrics if paired else None,
                clean_metric=_accuracy("correct")(clean_items[0]) if paired else None, n=n if paired else 0,
                options=options, missing=[], drop=True,
                interval_note_text=None if n >= MIN_DOCUMENTS else "items"))
    boards = {task: rank_leaderboard(e, options.confidence, measure="mean noised acc", clean_measure="clean acc",
                                     change_name="drop", higher_is_better=True, kind="accuracy")
              for task, e in entries.items()}
    return pd.DataFrame(rows), boards


def build_task_table(run_dirs, options):
    """One row per (run, model, task, noise) (see build_task_tables)."""
    return build_task_tables(run_dirs, options)[0]


def _interval(row, name, signed: bool = False) -> str:
    """acc (or a drop) with its interval; n/a for the interval below MIN_DOCUMENTS items (a point, not a range)."""
    sign = "+" if signed else ""
    if row["items"] < MIN_DOCUMENTS:
        return f"{row[name]:{sign}.3f} [n/a]"
    if not (math.isfinite(row[name + "_low"]) and math.isfinite(row[name + "_high"])):
        return f"{row[name]:{sign}.3f}"
    return f"{row[name]:{sign}.3f} [{row[name + '_low']:{sign}.3f}, {row[name + '_high']:{sign}.3f}]"


def markdown_task_tables(table) -> str:
    """Per task: one row per noise, one column per model: acc [interval], and for noises the drop from clean."""
    lines = []
    for task, rows in table.groupby("task", sort=False):
        models = list(dict.fromkeys(rows["model"]))
        n = int(rows["items"].iloc[0])
        lines += [f"### {task} ({n} items)", "", "| noise | " + " | ".join(models) + " |",
                  "|---|" + "---:|" * len(models)]
        for noise in dict.fromkeys(rows["noise"]):
            cells = []
            for model in models:
                hit = rows[(rows["model"] == model) & (rows["noise"] == noise)]
                if hit.empty:
                    cells.append("–")
                    continue
                r = hit.iloc[0]
                text = _interval(r, "acc")
                if noise != CLEAN:
                    text += f"; drop {_interval(r, 'acc_drop', signed=True)}"
                cells.append(text)
            lines.append(f"| `{noise}` | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def accuracy_range(rows, chance: float) -> tuple[float, float]:
    """The accuracy axis: the points, their whiskers and the chance line, with a margin (within [0, 1]), so that
    the differences between models show instead of a 0-1 axis with every point in a narrow band."""
    values = np.concatenate([rows[c].to_numpy(dtype=float) for c in ("acc", "acc_low", "acc_high")]
                            + [np.array([chance])])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    low, high = float(values.min()), float(values.max())
    margin = max(0.02, 0.08 * (high - low))
    return max(0.0, low - margin), min(1.0, high + margin)


def plot_task_accuracy(table, plots_dir: Path, confidence: float = 0.95,
                       replicates: int = stats.DEFAULT_REPLICATES) -> list[Path]:
    """Accuracy per noise (a point per model, dodged, with interval whiskers), one panel per task; the report's
    palette, markers and caption conventions."""
    from robustbench_bytes.report.plots import draw_caption, draw_legend, pyplot, save_figure, model_style

    plt = pyplot()
    task_names = list(dict.fromkeys(table["task"]))
    models = list(dict.fromkeys(table["model"]))
    fig, axes = plt.subplots(len(task_names), 1, figsize=(11, 3.6 * len(task_names)), squeeze=False)
    for ax, task in zip(axes[:, 0], task_names):
        rows = table[table["task"] == task]
        noises = list(dict.fromkeys(rows["noise"]))
        step = 0.6 / max(1, len(models))
        for k, model in enumerate(models):
            sub = rows[rows["model"] == model].set_index("noise").reindex(noises)
            if sub["acc"].isna().all():
                continue
            x = np.arange(len(noises)) + (k - (len(models) - 1) / 2) * step
            acc = sub["acc"].to_numpy(dtype=float)
            err = np.vstack([acc - sub["acc_low"].to_numpy(dtype=float), sub["acc_high"].to_numpy(dtype=float) - acc])
            ax.errorbar(x, acc, yerr=np.clip(np.nan_to_num(err), 0, None), linestyle="none", markersize=5,
                        capsize=3, elinewidth=1.2, label=model, **model_style(k))
        chance = float(np.nanmean(rows["chance"].to_numpy(dtype=float)))
        if math.isfinite(chance):
            ax.axhline(chance, color="#555555", linestyle="--", linewidth=1.0, label=f"chance ({chance:.3g})")
        ax.set_xticks(np.arange(len(noises)))
        ax.set_xticklabels(noises, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("accuracy")
        ax.set_ylim(*accuracy_range(rows, chance))
        ax.grid(axis="y", alpha=0.3)
        ax.set_title(f"{task}: accuracy under noise ({int(rows['items'].iloc[0])} items)")
        draw_legend(ax)
    items = sorted({int(n) for n in table["items"]})
    seeds = sorted({int(n) for n in table["seeds"]})
    whiskers = (f"whiskers: {confidence:.0%} bootstrap intervals over items ({replicates} replicates)"
                if min(items) >= MIN_DOCUMENTS else "no whiskers: a single item has no interval")
    fig.tight_layout()
    draw_caption(axes[-1, 0], f"{', '.join(map(str, items))} items per task; {', '.join(map(str, seeds))} noise "
             f"seed(s) per cell (their mean); {whiskers}.", width=130, below=70)
    return save_figure(fig, plots_dir, "task_accuracy")


@dataclass
class TaskSection:
    """The report's task parts: the leaderboards (Markdown, for the report's leaderboard section), the accuracy
    section, and the Leaderboard values."""

    leaderboard: list[str] = field(default_factory=list)
    markdown: list[str] = field(default_factory=list)
    boards: dict = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def write_task_report(run_dirs, out_dir: Path, options, plots: bool, leaderboards_inside: bool = True) -> TaskSection:
    """Writes tasks.csv (and plots/task_accuracy.*); returns the Markdown (empty without task cells), with the
    task leaderboards after the section's introduction when leaderboards_inside (else only in .leaderboard)."""
    from robustbench_bytes.report.text import leaderboard_notes, markdown_leaderboard

    table, boards = build_task_tables([Path(d) for d in run_dirs], options)
    if table.empty:
        return TaskSection()
    files = [out_dir / CSV_NAME]
    with atomic_path(files[0]) as tmp:
        table.to_csv(tmp, index=False)
    pct = f"{options.confidence:.0%}"
    board_md = []
    for task, board in boards.items():
        board_md += [f"### Accuracy on {task}", "",
                     "Ranked by the **mean accuracy on noised text** over the noises (higher is better), beside the "
                     "clean accuracy, the **drop** (clean − noised) and the **relative drop** (drop / clean, "
                     f"TokSuite's measure); brackets: {pct} paired bootstrap intervals over items.", "",
                     markdown_leaderboard(board), "", *[f"- {n}" for n in leaderboard_notes(board)], ""]
    md = ["## Multiple-choice accuracy under noise", "",
          "Each choice scored by the log-likelihood of its bytes given the (noised) context; **acc** = share of "
          "items whose true choice has the largest log-likelihood; **drop** = clean acc − noisy acc. Brackets: "
          f"{pct} bootstrap intervals over items ({options.replicates} replicates; the drop resamples the same "
          "items clean and noisy). Chance is 1 / number of choices (the dashed line of the plot). acc_norm is in "
          f"[{CSV_NAME}]({CSV_NAME}).", ""] + (board_md if leaderboards_inside else [])
    few = sorted({int(n) for n in table["items"] if n < FEW_DOCUMENTS})
    if few:
        md += [f"**Warning: only {', '.join(map(str, few))} item(s) in a task; intervals over items are rough below "
               f"{FEW_DOCUMENTS} and absent (n/a) below {MIN_DOCUMENTS}.**", ""]
    if plots:
        files += plot_task_accuracy(table, out_dir / "plots", options.confidence, options.replicates)
        md += ["![Accuracy per noise](plots/task_accuracy.png) ([SVG](plots/task_accuracy.svg))", ""]
    md += [markdown_task_tables(table)]
    return TaskSection(board_md, md, boards, files)
