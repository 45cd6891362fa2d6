"""The report's task part: accuracy under each noise per model and task, with bootstrap intervals over items,
as Markdown tables, a CSV and a plot. Run directories without task cells add nothing.

The accuracies are the metric table's (metrics.ACCURACIES): tasks.csv has each one it marks `report`; the
leaderboards, the Markdown tables and the plot show RANKED. A value is tasks.json's number (the mean over seeds
when a noise has several); the interval comes from a bootstrap over items of each item's right/wrong column
(task_schema.accuracy_columns), and the drop (clean - noisy) resamples the same items for both, so its interval
is paired.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robustbench_bytes import stats
from robustbench_bytes.errors import BadInput
from robustbench_bytes.files import atomic_path
from robustbench_bytes.formatting import format_signed
from robustbench_bytes.report.leaderboard import leaderboard_entry, rank_leaderboard
from robustbench_bytes.report.lm_eval_summary import SummaryCell, read_lm_eval_cells
from robustbench_bytes.report.options import FEW_DOCUMENTS, MIN_DOCUMENTS, bootstrap
from robustbench_bytes.results import metrics, resampled, tasks_io
from robustbench_bytes.results.schema import CLEAN
from robustbench_bytes.results.task_schema import accuracy_columns

CSV_NAME = "tasks.csv"
RANKED = metrics.ACCURACIES[metrics.PRIMARY_ACCURACY]  # what the leaderboards rank by, the tables and plot show


def reported_accuracies() -> list[metrics.AccuracySpec]:
    """The accuracies tasks.csv has (each with its interval and its drop from clean), in the metric table's order."""
    return [spec for spec in metrics.ACCURACIES.values() if spec.report]


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


def _point(cells, name: str) -> float:
    """An accuracy's mean over the cells (seeds); nan where a cell has none."""
    values = [c.accuracies.get(name, math.nan) if isinstance(c, SummaryCell) else getattr(c, name) for c in cells]
    return float(np.mean([math.nan if v is None else v for v in values]))


def _item_metrics(items: list, name: str) -> list | None:
    """Each cell's bootstrap metric of an accuracy over its items (their right/wrong column); None where the
    records lack the column (acc_bytes of task scoring version 1)."""
    columns = [accuracy_columns(records)[name] for records in items]
    if any(c is None for c in columns):
        return None
    return [resampled.accuracy(np.array(c, dtype=np.float64)) for c in columns]


def _chance(cells, items) -> float:
    """1 / number of choices, averaged over items (from the records; else from tasks.json's choice count)."""
    if items:
        return float(np.mean([1.0 / len(i.loglikelihoods) for i in items[0]]))
    first = cells[0]
    return first.items / first.choices if first.choices else math.nan


def build_task_tables(run_dirs, options):
    """(table, leaderboards): one row per (run, model, task, noise) with each reported accuracy, its interval and
    the paired drop from clean; and per task a Leaderboard ranked by mean noised RANKED accuracy."""
    import pandas as pd

    rows, entries = [], {}
    several = len(run_dirs) > 1
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
            clean_ranked = None if clean_items is None else _item_metrics(clean_items, RANKED.name)
            n = by_noise[CLEAN][0].items
            noisy_metrics, paired = [], clean_ranked is not None
            for noise in [CLEAN] + [x for x in by_noise if x != CLEAN]:
                cells = by_noise[noise]
                items = _items(run_dir, cells)
                if items is not None and (clean_items is None or any(len(x) != n for x in items)):
                    items = None
                row = {"run": str(run_dir), "model": label, "task": cells[0].task, "noise": noise,
                       "seeds": len(cells), "items": n, "level": cells[0].level,
                       "architecture": cells[0].architecture, "chance": _chance(cells, items)}
                clean_cells = None if noise == CLEAN else by_noise[CLEAN]
                for spec in reported_accuracies():
                    _add_accuracy(row, spec.name, cells, clean_cells, items, clean_items, n, options)
                if noise != CLEAN:
                    ranked = None if items is None else _item_metrics(items, RANKED.name)
                    paired = paired and ranked is not None
                    noisy_metrics.append(None if ranked is None else stats.mean_of(ranked))
                rows.append(row)
            task_rows = [r for r in rows if r["run"] == str(run_dir) and r["model"] == label
                         and r["task"] == by_noise[CLEAN][0].task]
            noisy_rows = [r for r in task_rows if r["noise"] != CLEAN]
            entries.setdefault(by_noise[CLEAN][0].task, []).append(leaderboard_entry(
                label=label, model=by_noise[CLEAN][0].model, run=str(run_dir), level=task_rows[0]["level"],
                architecture=task_rows[0]["architecture"], documents=n, noises=len(noisy_rows),
                noised_values=[r[RANKED.name] for r in noisy_rows], clean_value=task_rows[0][RANKED.name],
                noised_metrics=noisy_metrics if paired else None,
                clean_metric=clean_ranked[0] if paired else None, n=n if paired else 0,
                options=options, missing=[], drop=True,
                interval_note_text=None if n >= MIN_DOCUMENTS else "items"))
    boards = {task: rank_leaderboard(e, options.confidence, measure=f"mean noised {RANKED.label}",
                                     clean_measure=f"clean {RANKED.label}", change_name="drop",
                                     higher_is_better=True, metric=RANKED.name)
              for task, e in entries.items()}
    return pd.DataFrame(rows), boards


def _add_accuracy(row: dict, name: str, cells, clean_cells, items, clean_items, n: int, options) -> None:
    """Adds one accuracy to a row: its value and, for a noise (clean_cells: the clean cells; None on the clean
    row), its drop from clean; each with its bootstrap interval over items where every cell has its records
    (items: per cell; clean_items: the clean cell's)."""
    point = _point(cells, name)
    row.update(stats.Interval(point, math.nan, math.nan, options.confidence).as_dict(name))
    if clean_cells is not None:
        row.update(stats.Interval(_point(clean_cells, name) - point, math.nan, math.nan,
                                  options.confidence).as_dict(f"{name}_drop"))
    per_cell = None if items is None else _item_metrics(items, name)
    if per_cell is None:
        return
    metric = stats.mean_of(per_cell)
    row.update(bootstrap(metric, n, options).as_dict(name))
    clean = None if clean_cells is None else _item_metrics(clean_items, name)
    if clean is not None:
        row.update(bootstrap(stats.difference(clean[0], metric), n, options).as_dict(f"{name}_drop"))


def build_task_table(run_dirs, options):
    """One row per (run, model, task, noise) (see build_task_tables)."""
    return build_task_tables(run_dirs, options)[0]


def _interval(row, name: str, signed: bool = False) -> str:
    """RANKED (or its drop) with its interval; n/a for the interval below MIN_DOCUMENTS items (a point, not a
    range)."""
    write = (lambda v: format_signed(v, RANKED.format)) if signed else RANKED.format
    if row["items"] < MIN_DOCUMENTS:
        return f"{write(row[name])} [n/a]"
    if not (math.isfinite(row[name + "_low"]) and math.isfinite(row[name + "_high"])):
        return write(row[name])
    return f"{write(row[name])} [{write(row[name + '_low'])}, {write(row[name + '_high'])}]"


def markdown_task_tables(table) -> str:
    """Per task: one row per noise, one column per model: RANKED [interval], and for noises the drop from clean."""
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
                text = _interval(r, RANKED.name)
                if noise != CLEAN:
                    text += f"; drop {_interval(r, f'{RANKED.name}_drop', signed=True)}"
                cells.append(text)
            lines.append(f"| `{noise}` | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def accuracy_range(rows, chance: float) -> tuple[float, float]:
    """The accuracy axis: the points, their whiskers and the chance line, with a margin (within [0, 1]), so that
    the differences between models show instead of a 0-1 axis with every point in a narrow band."""
    columns = (RANKED.name, f"{RANKED.name}_low", f"{RANKED.name}_high")
    values = np.concatenate([rows[c].to_numpy(dtype=float) for c in columns]
                            + [np.array([chance])])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    low, high = float(values.min()), float(values.max())
    margin = max(0.02, 0.08 * (high - low))
    return max(0.0, low - margin), min(1.0, high + margin)


def plot_task_accuracy(table, plots_dir: Path, confidence: float = 0.95,
                       replicates: int = stats.DEFAULT_REPLICATES) -> list[Path]:
    """RANKED per noise (a point per model, dodged, with interval whiskers), one panel per task; the report's
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
            if sub[RANKED.name].isna().all():
                continue
            x = np.arange(len(noises)) + (k - (len(models) - 1) / 2) * step
            acc = sub[RANKED.name].to_numpy(dtype=float)
            err = np.vstack([acc - sub[f"{RANKED.name}_low"].to_numpy(dtype=float),
                             sub[f"{RANKED.name}_high"].to_numpy(dtype=float) - acc])
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
    acc = RANKED.label
    others = [spec.label for spec in reported_accuracies() if spec.name != RANKED.name]
    in_csv = f" {' and '.join(others)} {'is' if len(others) == 1 else 'are'} in [{CSV_NAME}]({CSV_NAME})." \
        if others else ""
    md = ["## Multiple-choice accuracy under noise", "",
          f"Each choice scored by the log-likelihood of its bytes given the (noised) context; **{acc}** = share of "
          f"items whose true choice has the largest log-likelihood; **drop** = clean {acc} − noisy {acc}. Brackets: "
          f"{pct} bootstrap intervals over items ({options.replicates} replicates; the drop resamples the same "
          f"items clean and noisy). Chance is 1 / number of choices (the dashed line of the plot).{in_csv}", ""] \
        + (board_md if leaderboards_inside else [])
    few = sorted({int(n) for n in table["items"] if n < FEW_DOCUMENTS})
    if few:
        md += [f"**Warning: only {', '.join(map(str, few))} item(s) in a task; intervals over items are rough below "
               f"{FEW_DOCUMENTS} and absent (n/a) below {MIN_DOCUMENTS}.**", ""]
    if plots:
        files += plot_task_accuracy(table, out_dir / "plots", options.confidence, options.replicates)
        md += ["![Accuracy per noise](plots/task_accuracy.png) ([SVG](plots/task_accuracy.svg))", ""]
    md += [markdown_task_tables(table)]
    return TaskSection(board_md, md, boards, files)
