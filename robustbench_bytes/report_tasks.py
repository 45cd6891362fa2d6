"""The report's task part: accuracy under each noise per model and task, with bootstrap intervals over items,
as Markdown tables, a CSV and a plot. Run directories without task cells add nothing.

acc is tasks.json's number (the mean over seeds when a noise has several); the interval comes from a bootstrap
over items of the per-item records, and the drop (clean acc - noisy acc) resamples the same items for both,
so its interval is paired.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robustbench_bytes import stats, tasks_io
from robustbench_bytes.files import atomic_path
from robustbench_bytes.report_table import FEW_DOCUMENTS, MIN_DOCUMENTS
from robustbench_bytes.result_schema import CLEAN
from robustbench_bytes.task_scoring import accuracy_metric

CSV_NAME = "tasks.csv"


def build_task_table(run_dirs, options):
    """One row per (run, model, task, noise): acc and acc_norm with intervals, and the paired drop from clean."""
    import pandas as pd

    rows = []
    several = len(run_dirs) > 1
    for run_dir in run_dirs:
        groups: dict[tuple, list] = {}
        for r in tasks_io.read_task_results(run_dir):
            if r.ok:
                groups.setdefault((r.model_spec, r.task_spec, r.noise), []).append(r)
        for (model, task, noise), cells in groups.items():
            clean = groups.get((model, task, CLEAN))
            if clean is None:
                continue
            clean_items = tasks_io.read_task_items(run_dir, clean[0])
            items = [tasks_io.read_task_items(run_dir, c) for c in cells]
            if any(len(x) != len(clean_items) for x in items):
                continue
            n = len(clean_items)
            row = {"run": str(run_dir), "model": cells[0].model + (f" [{Path(run_dir).name}]" if several else ""),
                   "task": cells[0].task, "noise": noise, "seeds": len(cells), "items": n,
                   "level": cells[0].level, "architecture": cells[0].architecture}
            for name, field in (("acc", "correct"), ("acc_norm", "correct_norm")):
                def metric(records):
                    return accuracy_metric(np.array([getattr(i, field) for i in records], dtype=np.float64))

                noisy = stats.mean_of([metric(x) for x in items])
                kwargs = dict(confidence=options.confidence, replicates=options.replicates, seed=options.seed)
                row.update(stats.bootstrap(noisy, n, **kwargs).as_dict(name))
                if noise != CLEAN:
                    row.update(stats.bootstrap(stats.difference(metric(clean_items), noisy), n,
                                               **kwargs).as_dict(f"{name}_drop"))
            rows.append(row)
    return pd.DataFrame(rows)


def _interval(row, name, signed: bool = False) -> str:
    """acc (or a drop) with its interval; n/a for the interval below MIN_DOCUMENTS items (a point, not a range)."""
    sign = "+" if signed else ""
    if row["items"] < MIN_DOCUMENTS:
        return f"{row[name]:{sign}.3f} [n/a]"
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


def plot_task_accuracy(table, plots_dir: Path, confidence: float = 0.95,
                       replicates: int = stats.DEFAULT_REPLICATES) -> list[Path]:
    """Accuracy per noise (a point per model, dodged, with interval whiskers), one panel per task; the report's
    palette, markers and caption conventions."""
    from robustbench_bytes.report_plots import _caption, _legend, _pyplot, _save, model_style

    plt = _pyplot()
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
        ax.set_xticks(np.arange(len(noises)))
        ax.set_xticklabels(noises, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
        ax.set_title(f"{task}: accuracy under noise ({int(rows['items'].iloc[0])} items)")
        _legend(ax)
    items = sorted({int(n) for n in table["items"]})
    seeds = sorted({int(n) for n in table["seeds"]})
    whiskers = (f"whiskers: {confidence:.0%} bootstrap intervals over items ({replicates} replicates)"
                if min(items) >= MIN_DOCUMENTS else "no whiskers: a single item has no interval")
    fig.tight_layout()
    _caption(axes[-1, 0], f"{', '.join(map(str, items))} items per task; {', '.join(map(str, seeds))} noise "
             f"seed(s) per cell (their mean); {whiskers}.", width=130, below=70)
    return _save(fig, plots_dir, "task_accuracy")


def write_task_report(run_dirs, out_dir: Path, options, plots: bool) -> list[str]:
    """Writes tasks.csv (and plots/task_accuracy.*); returns the README lines ([] without task cells)."""
    table = build_task_table([Path(d) for d in run_dirs], options)
    if table.empty:
        return []
    with atomic_path(out_dir / CSV_NAME) as tmp:
        table.to_csv(tmp, index=False)
    pct = f"{options.confidence:.0%}"
    md = ["## Multiple-choice accuracy under noise", "",
          "Each choice scored by the log-likelihood of its bytes given the (noised) context; **acc** = share of "
          "items whose true choice has the largest log-likelihood; **drop** = clean acc − noisy acc. Brackets: "
          f"{pct} bootstrap intervals over items ({options.replicates} replicates; the drop resamples the same "
          "items clean and noisy). Chance is 1 / number of choices. acc_norm (per byte) is in "
          f"[{CSV_NAME}]({CSV_NAME}).", ""]
    few = sorted({int(n) for n in table["items"] if n < FEW_DOCUMENTS})
    if few:
        md += [f"**Warning: only {', '.join(map(str, few))} item(s) in a task; intervals over items are rough below "
               f"{FEW_DOCUMENTS} and absent (n/a) below {MIN_DOCUMENTS}.**", ""]
    md += [markdown_task_tables(table)]
    if plots:
        plot_task_accuracy(table, out_dir / "plots", options.confidence, options.replicates)
        md += ["### Accuracy per noise", "", "![Accuracy per noise](plots/task_accuracy.png) "
               "([SVG](plots/task_accuracy.svg))", ""]
    return md
