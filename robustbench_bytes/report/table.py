"""The report's table: one row per (run, model, noise), estimates with bootstrap intervals over documents.

Point estimates are results.json's numbers (the mean over seeds when a noise has several); the
intervals come from a bootstrap over documents of the per-document NLLs (stats.py), with the
same document draws for the clean and the noisy cell, so the interval of a rise or an increase is
paired. With fewer than MIN_DOCUMENTS documents there is no interval (the row says why).

The leaderboard (a Leaderboard: one entry per model) ranks models by how well they do on noised text: the mean
bits per clean byte over the noises of the run (lower is better), beside the clean score, the rise (noised minus
clean) and the relative rise (rise / clean), each bootstrapped with the same draws for every noise and the clean
text. It does not rank by the rise: a model that is weak on clean text has less to lose, so the rise rewards it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from robustbench_bytes.results import metrics
from robustbench_bytes import results as results_io
from robustbench_bytes import stats
from robustbench_bytes.errors import BadInput
from robustbench_bytes.results.schema import CLEAN, CellResult, metric_value

MIN_DOCUMENTS = 2  # a bootstrap over one document is a point, not an interval
FEW_DOCUMENTS = 10  # below this the report warns that its intervals are rough


@dataclass(frozen=True)
class ReportOptions:
    confidence: float = 0.95
    replicates: int = stats.DEFAULT_REPLICATES
    seed: int = 0

    def __post_init__(self):
        if not (0.5 <= self.confidence < 1):  # also rejects nan
            raise BadInput(f"confidence={self.confidence}: expected a number in [0.5, 1)")
        if not 10 <= self.replicates <= stats.MAX_REPLICATES:
            raise BadInput(f"replicates={self.replicates}: expected an integer from 10 to {stats.MAX_REPLICATES:,}")


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
            board.append(_leaderboard_entry(model_rows, noisy_metrics, clean_metric, options))
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
    clean_metric = stats.metric(metrics.PRIMARY, clean_docs) if clean_docs is not None else None
    return rows, noisy_metrics, clean_metric


def _documents(run_dir: Path, result: CellResult) -> stats.DocumentArrays | None:
    try:
        docs = results_io.read_documents(run_dir, result)
    except BadInput:
        return None
    return stats.DocumentArrays.from_documents(docs) if docs else None


def _add_intervals(row: dict, run_dir: Path, ok: list[CellResult], clean_docs, options: ReportOptions):
    """Fills the row's intervals; returns (bits per clean byte metric, documents) for the leaderboard, or None."""
    arrays = [_documents(run_dir, c) for c in ok]
    if any(a is None for a in arrays) or len({len(a) for a in arrays}) != 1:
        return None
    n = len(arrays[0])
    drawn = {}  # each report column's bootstrap metric: seeds pooled by their mean, changes paired with clean
    for spec in metrics.report_specs():
        drawn[spec.name] = stats.mean_of([stats.metric(spec.name, a) for a in arrays])
        if spec.change and clean_docs is not None and len(clean_docs) == n:
            drawn[spec.change] = stats.difference(drawn[spec.name], stats.metric(spec.name, clean_docs))
    bits = drawn[metrics.PRIMARY]
    if n < MIN_DOCUMENTS:
        row["interval"] = interval_note(n)
        return bits, n
    for name, metric in drawn.items():
        interval = _bootstrap(metric, n, options)
        row[f"{name}_low"], row[f"{name}_high"] = interval.low, interval.high
    return bits, n


def _bootstrap(metric, n: int, options: ReportOptions) -> stats.Interval:
    return stats.bootstrap(metric, n, confidence=options.confidence, replicates=options.replicates,
                           seed=options.seed)


@dataclass(frozen=True)
class LeaderboardEntry:
    """One model on the leaderboard: its score on noised text (the mean over the noises), on clean text, the
    change (noised minus clean) and the relative change (change / clean), each a stats.Interval (bounds nan where
    there is no interval), or None where the model misses a cell (`missing` says which)."""

    label: str
    model: str
    run: str
    level: str | None
    architecture: str | None
    documents: int
    noises: int
    noised: stats.Interval | None
    clean: stats.Interval | None
    change: stats.Interval | None
    relative_change: stats.Interval | None
    missing: str | None = None
    rank: int | None = None
    interval_note: str | None = None


@dataclass(frozen=True)
class Leaderboard:
    """Entries best first by `noised` (lower first unless higher_is_better); unranked entries last. The names say
    what each number is, for the report's and the terminal's words."""

    entries: tuple[LeaderboardEntry, ...]
    measure: str  # what `noised` is, e.g. "mean noised bits per clean byte"
    clean_measure: str
    change_name: str  # "rise" or "drop"
    higher_is_better: bool = False
    confidence: float = 0.95
    kind: str = "bits"  # how the numbers are written: "bits" (bits per byte) or "accuracy"

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def ranked(self) -> list[LeaderboardEntry]:
        return [e for e in self.entries if e.rank is not None]


@dataclass(frozen=True)
class Standing:
    """The best entry by one measure, and whether its interval clears every other ranked entry's."""

    entry: LeaderboardEntry
    value: stats.Interval
    clear: bool
    overlaps: tuple[str, ...]  # labels of the entries whose intervals overlap the best one's


def _clears(best: stats.Interval, other: stats.Interval, lower_is_better: bool) -> bool:
    if not all(math.isfinite(x) for x in (best.low, best.high, other.low, other.high)):
        return False
    return best.high < other.low if lower_is_better else best.low > other.high


def standing(board: Leaderboard, field: str, lower_is_better: bool) -> Standing | None:
    """Who is best by one of an entry's intervals (noised, change, relative_change) and whether the order holds:
    the best interval clears every other model's (no overlap). None with fewer than two ranked models."""
    ranked = [e for e in board.ranked if getattr(e, field) is not None and math.isfinite(getattr(e, field).estimate)]
    if len(ranked) < 2:
        return None
    sign = 1.0 if lower_is_better else -1.0
    best = min(ranked, key=lambda e: sign * getattr(e, field).estimate)
    value = getattr(best, field)
    overlaps = tuple(e.label for e in ranked if e is not best
                     and not _clears(value, getattr(e, field), lower_is_better))
    return Standing(best, value, not overlaps, overlaps)


def leaderboard_entry(*, label: str, model: str, run: str, level, architecture, documents: int, noises: int,
                      noised_values: list,
                      clean_value, noised_metrics: list | None, clean_metric, n: int, options: ReportOptions,
                      missing: list[str], interval_note_text: str | None = None,
                      drop: bool = False) -> LeaderboardEntry:
    """One leaderboard entry from point values (results' numbers) and, where every cell has its per-document
    (or per-item) records, bootstrap metrics under shared draws: the noised mean, the clean score, the change
    and the relative change get paired intervals. The change is noised - clean (a rise), or with drop=True
    clean - noised (an accuracy drop; relative: TokSuite's (acc_clean - acc_noised) / acc_clean)."""
    base = dict(label=label, model=model, run=run, level=level, architecture=architecture, documents=documents,
                noises=noises, interval_note=interval_note_text)
    if missing or not noised_values:
        return LeaderboardEntry(**base, noised=None, clean=None, change=None, relative_change=None,
                                missing=", ".join(missing) if missing else "no noises in the run")
    noised = sum(noised_values) / len(noised_values)
    change = clean_value - noised if drop else noised - clean_value
    points = {"noised": noised, "clean": clean_value, "change": change,
              "relative_change": change / clean_value if clean_value else math.nan}
    paired: dict[str, Callable] = {}
    if noised_metrics is not None and clean_metric is not None and n >= MIN_DOCUMENTS:
        noised_metric = stats.mean_of(noised_metrics)
        change_metric = (stats.difference(clean_metric, noised_metric) if drop
                         else stats.difference(noised_metric, clean_metric))
        paired = {"noised": noised_metric, "clean": clean_metric, "change": change_metric,
                  "relative_change": stats.ratio(change_metric, clean_metric)}
    intervals = {}
    for name, value in points.items():
        low = high = math.nan
        if name in paired:
            drawn = _bootstrap(paired[name], n, options)
            low, high = drawn.low, drawn.high
        intervals[name] = stats.Interval(value, low, high, options.confidence)
    return LeaderboardEntry(**base, **intervals)


def _leaderboard_entry(rows: list[dict], noisy_metrics: list, clean_metric, options: ReportOptions) -> LeaderboardEntry:
    """One model's entry: every noise and the clean cell share each replicate's document draws. The means need
    every noise scored; otherwise the entry is unranked and says which noises are missing."""
    clean = next((r for r in rows if r["noise"] == CLEAN), None)
    noisy = [r for r in rows if r["noise"] != CLEAN]
    first = rows[0]
    missing = [r["noise"] for r in noisy if r["status"] == "failed" or not math.isfinite(r["bits_per_clean_byte"])]
    if clean is None or clean["status"] != "ok" or not math.isfinite(clean["bits_per_clean_byte"]):
        missing = [CLEAN] + missing
    counts = {m[1] for m in noisy_metrics if m is not None}
    paired = (all(m is not None for m in noisy_metrics) and len(counts) == 1 and clean_metric is not None)
    return leaderboard_entry(
        label=first["label"], model=first["model"], run=first["run"], level=first["level"],
        architecture=first["architecture"], documents=first["documents"], noises=len(noisy),
        noised_values=[] if missing else [r["bits_per_clean_byte"] for r in noisy],
        clean_value=None if clean is None else clean["bits_per_clean_byte"],
        noised_metrics=[m for m, _ in noisy_metrics] if paired else None, clean_metric=clean_metric,
        n=counts.pop() if paired else 0, options=options, missing=missing, interval_note_text=first["interval"])


def rank_leaderboard(entries: list[LeaderboardEntry], confidence: float = 0.95, *,
                     measure: str = "mean noised bits per clean byte", clean_measure: str = "clean bits/byte",
                     change_name: str = "rise", higher_is_better: bool = False, kind: str = "bits") -> Leaderboard:
    """Best on noised text first; entries without a score last, unranked."""
    from dataclasses import replace

    sign = -1.0 if higher_is_better else 1.0
    scored = sorted((e for e in entries if e.noised is not None), key=lambda e: sign * e.noised.estimate)
    ranked = [replace(e, rank=i) for i, e in enumerate(scored, start=1)]
    ranked += [e for e in entries if e.noised is None]
    return Leaderboard(tuple(ranked), measure, clean_measure, change_name, higher_is_better, confidence, kind)


def csv_columns() -> list[str]:
    """report.csv's columns: the cell's identity, each report column of the metric table (metrics.report_columns)
    with its interval, then why a row has no interval, its error and its undefined metrics."""
    return (["label", "model", "run", "corpus", "corpus_sha256", "noise", "seeds", "documents", "clean_bytes",
             "level", "architecture", "status"]
            + [f"{m}{s}" for m in metrics.report_columns() for s in ("", "_low", "_high")]
            + ["interval", "error", "undefined"])
