"""The report's table: one row per (run, model, noise), estimates with bootstrap intervals over documents.

Point estimates are results.json's numbers (the mean over seeds when a noise has several); the
intervals come from a bootstrap over documents of the per-document NLLs (stats.py), with the
same document draws for the clean and the noisy cell, so the interval of a rise or an increase is
paired. With fewer than MIN_DOCUMENTS documents there is no interval (the row says why). The same bootstrap
metrics give each model's leaderboard entry (leaderboard.py).
"""

from __future__ import annotations

import math
from pathlib import Path

from robustbench_bytes.results import metrics, resampled
from robustbench_bytes import results as results_io
from robustbench_bytes import stats
from robustbench_bytes.errors import BadInput
from robustbench_bytes.report.leaderboard import perplexity_entry, rank_leaderboard
from robustbench_bytes.report.options import FEW_DOCUMENTS, MIN_DOCUMENTS, ReportOptions, bootstrap
from robustbench_bytes.results.schema import CLEAN, CellResult, metric_value


def group_label(run: str, model: str, several_runs: bool) -> str:
    return f"{model} [{Path(run).name}]" if several_runs else model


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else math.nan


def interval_note(documents: int, unit: str = "document") -> str | None:
    """Why a row has no interval (fewer than MIN_DOCUMENTS documents), else None."""
    if documents >= MIN_DOCUMENTS:
        return None
    return f"no interval: {documents} {unit}{'' if documents == 1 else 's'} (a bootstrap needs {MIN_DOCUMENTS})"


def few_documents_warning(table) -> str | None:
    """A warning when a run scored fewer than FEW_DOCUMENTS documents (its intervals are rough or absent)."""
    if table.empty:
        return None
    few = sorted({int(d) for d in table["documents"] if d is not None and int(d) < FEW_DOCUMENTS})
    if not few:
        return None
    return (f"warning: only {', '.join(map(str, few))} document(s) scored; bootstrap intervals over documents are "
            f"rough below {FEW_DOCUMENTS} documents and absent (n/a) below {MIN_DOCUMENTS}. For a quick look keep "
            "many short documents: --limit-documents N and --max-document-bytes N.")


def build_tables(run_dirs: list[Path | str], options: ReportOptions = ReportOptions()):
    """(table, leaderboard): one row per (run, model, noise), seeds pooled by their mean, with estimates and
    intervals (empty, with the CSV columns, when the runs hold no perplexity cells); and the Leaderboard."""
    import pandas as pd

    run_dirs = [results_io.check_run_dir(d) for d in run_dirs]  # results.json, tasks/ or lm_eval/ manifest
    check_distinct_runs(run_dirs)
    several_runs = len(run_dirs) > 1
    rows, board = [], []
    for run_dir in run_dirs:
        groups: dict[str, list[CellResult]] = {}
        for r in perplexity_results(run_dir):
            groups.setdefault(r.model_spec, []).append(r)
        for cells in groups.values():
            model_rows, noisy_metrics, clean_metric = _model_rows(run_dir, cells, several_runs, options)
            rows.extend(model_rows)
            board.append(perplexity_entry(model_rows, noisy_metrics, clean_metric, options))
    table = pd.DataFrame(rows) if rows else pd.DataFrame(columns=csv_columns() + ["clean_words"])
    return table, rank_leaderboard(board, options.confidence)


def build_table(run_dirs: list[Path | str], options: ReportOptions = ReportOptions()):
    """The report's table alone (see build_tables)."""
    return build_tables(run_dirs, options)[0]


def perplexity_results(run_dir: Path) -> list[CellResult]:
    """The perplexity cells of a run directory; [] for a folder with task cells only."""
    return results_io.read_results(run_dir) if (run_dir / results_io.RESULTS_FILE).is_file() else []


def check_distinct_runs(run_dirs: list[Path]) -> None:
    """The same run twice, or two runs whose folders share a name (their labels would collide), is refused."""
    seen: dict[str, Path] = {}
    for run_dir in run_dirs:
        real = run_dir.resolve()
        if str(real) in {str(p.resolve()) for p in seen.values()}:
            raise BadInput(f"{run_dir}: the same run directory is given twice")
        if run_dir.name in seen:
            raise BadInput(f"{run_dir} and {seen[run_dir.name]}: two run directories named {run_dir.name!r}; "
                           f"the report labels models by run folder name, so rename one")
        seen[run_dir.name] = run_dir


def _model_rows(run_dir: Path, cells: list[CellResult], several_runs: bool,
                options: ReportOptions) -> tuple[list[dict], list, stats.Metric | None]:
    """The rows of one model; each noisy row's bootstrap metric of bits per clean byte with its document count
    (None where it has no documents); the clean cell's metric (None without documents)."""
    model = cells[0].model
    label = group_label(str(run_dir), model, several_runs)
    clean = next((c for c in cells if c.is_clean and c.ok), None)
    clean_docs = _documents(run_dir, clean) if clean else None
    by_noise: dict[str, list[CellResult]] = {}
    for c in cells:
        by_noise.setdefault(c.noise, []).append(c)
    noises = [CLEAN] + [n for n in by_noise if n != CLEAN] if CLEAN in by_noise else list(by_noise)
    rows, noisy_metrics = [], []
    for noise in noises:
        group = by_noise[noise]
        ok = [c for c in group if c.ok]
        failed = [c for c in group if not c.ok]
        first = group[0]
        row = {
            "run": str(run_dir), "label": label, "model": model, "corpus": first.corpus,
            "corpus_sha256": first.corpus_sha256, "noise": noise,
            "seeds": ",".join(str(c.seed) for c in ok), "documents": first.documents,
            "clean_bytes": first.clean_bytes, "clean_words": first.clean_words,
            "level": first.level, "architecture": first.architecture,
            "status": "ok" if not failed else ("failed" if not ok else f"{len(failed)} seed(s) failed"),
            "error": "; ".join(str(c.error) for c in failed) or None,
            "undefined": "; ".join(sorted({f"{k}: {v}" for c in ok for k, v in c.undefined.items()})) or None,
            "interval": interval_note(first.documents or 0),
        }
        for column in metrics.report_columns():
            row.update({column: math.nan, f"{column}_low": math.nan, f"{column}_high": math.nan})
        metric = None
        if ok:
            for spec in metrics.report_specs():
                row[spec.name] = _mean(metric_value(c, spec.name) for c in ok)
                clean_value = None if clean is None else metric_value(clean, spec.name)
                if spec.change and clean_value is not None:  # clean's own change is 0: kept so the CSV is full
                    row[spec.change] = row[spec.name] - clean_value
            metric = _add_intervals(row, run_dir, ok, clean_docs, options)
        rows.append(row)
        if noise != CLEAN:
            noisy_metrics.append(metric)
    clean_metric = resampled.metric(metrics.PRIMARY, clean_docs) if clean_docs is not None else None
    return rows, noisy_metrics, clean_metric


def _documents(run_dir: Path, result: CellResult) -> resampled.DocumentArrays | None:
    try:
        docs = results_io.read_documents(run_dir, result)
    except BadInput:
        return None
    return resampled.DocumentArrays.from_documents(docs) if docs else None


def _add_intervals(row: dict, run_dir: Path, ok: list[CellResult], clean_docs, options: ReportOptions):
    """Fills the row's intervals; returns (bits per clean byte metric, documents) for the leaderboard, or None."""
    arrays = [_documents(run_dir, c) for c in ok]
    if any(a is None for a in arrays) or len({len(a) for a in arrays}) != 1:
        return None
    n = len(arrays[0])
    drawn = {}  # each report column's bootstrap metric: seeds pooled by their mean, changes paired with clean
    for spec in metrics.report_specs():
        drawn[spec.name] = stats.mean_of([resampled.metric(spec.name, a) for a in arrays])
        if spec.change and clean_docs is not None and len(clean_docs) == n:
            drawn[spec.change] = stats.difference(drawn[spec.name], resampled.metric(spec.name, clean_docs))
    bits = drawn[metrics.PRIMARY]
    if n < MIN_DOCUMENTS:
        row["interval"] = interval_note(n)
        return bits, n
    for name, metric in drawn.items():
        interval = bootstrap(metric, n, options)
        row[f"{name}_low"], row[f"{name}_high"] = interval.low, interval.high
    return bits, n


def csv_columns() -> list[str]:
    """report.csv's columns: the cell's identity, each report column of the metric table (metrics.report_columns)
    with its interval, then why a row has no interval, its error and its undefined metrics."""
    return (["label", "model", "run", "corpus", "corpus_sha256", "noise", "seeds", "documents", "clean_bytes",
             "level", "architecture", "status"]
            + [f"{m}{s}" for m in metrics.report_columns() for s in ("", "_low", "_high")]
            + ["interval", "error", "undefined"])
