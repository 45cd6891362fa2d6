"""The report's table: one row per (run, model, noise), estimates with bootstrap intervals over documents.

Point estimates are results.json's numbers (the mean over seeds when a noise has several); the
intervals come from a bootstrap over documents of the per-document NLLs (stats.py), with the
same document draws for the clean and the noisy cell, so the interval of a rise or an increase is
paired. With fewer than MIN_DOCUMENTS documents there is no interval (the row says why); the
leaderboard (one row per model) ranks models by their mean rise in bits per clean byte over the
noises of the run, bootstrapped with the same draws for every noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from robustbench_bytes import results as results_io
from robustbench_bytes import stats
from robustbench_bytes.errors import BadInput
from robustbench_bytes.result_schema import CLEAN, CellResult

METRICS = ("bits_per_clean_byte", "bits_rise", "bits_per_byte", "word_perplexity", "ppl_increase")
METRIC_LABELS = {
    "bits_per_clean_byte": "bits/clean byte",
    "bits_rise": "rise over clean",
    "bits_per_byte": "bits/byte",
    "word_perplexity": "word-PPL",
    "ppl_increase": "word-PPL increase",
}
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
        if self.replicates < 10:
            raise BadInput(f"replicates={self.replicates}: expected at least 10")


def _group_label(run: str, model: str, several_runs: bool) -> str:
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


def build_table(run_dirs: list[Path | str], options: ReportOptions = ReportOptions()):
    """One row per (run, model, noise), seeds pooled by their mean: estimates and intervals. Empty (with the
    CSV columns) when the runs hold no perplexity cells; the table's attrs["leaderboard"] holds the leaderboard."""
    import pandas as pd

    run_dirs = [results_io.check_run_dir(d) for d in run_dirs]
    check_distinct_runs(run_dirs)
    several_runs = len(run_dirs) > 1
    rows, board = [], []
    for run_dir in run_dirs:
        groups: dict[str, list[CellResult]] = {}
        for r in results_io.read_results(run_dir):
            groups.setdefault(r.model_spec, []).append(r)
        for cells in groups.values():
            model_rows, rises = _model_rows(run_dir, cells, several_runs, options)
            rows.extend(model_rows)
            board.append(_leaderboard_row(model_rows, rises, options))
    table = pd.DataFrame(rows) if rows else pd.DataFrame(columns=CSV_COLUMNS + ["clean_words"])
    table.attrs["leaderboard"] = rank_leaderboard(board)
    return table


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
                options: ReportOptions) -> tuple[list[dict], list]:
    """The rows of one model, and the paired rise metric of each noisy row (None where it has no documents)."""
    model = cells[0].model
    label = _group_label(str(run_dir), model, several_runs)
    clean = next((c for c in cells if c.is_clean and c.ok), None)
    clean_docs = _documents(run_dir, clean) if clean else None
    by_noise: dict[str, list[CellResult]] = {}
    for c in cells:
        by_noise.setdefault(c.noise, []).append(c)
    noises = [CLEAN] + [n for n in by_noise if n != CLEAN] if CLEAN in by_noise else list(by_noise)
    rows, rises = [], []
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
        for metric in METRICS:
            row.update({metric: math.nan, f"{metric}_low": math.nan, f"{metric}_high": math.nan})
        rise = None
        if ok:
            row["word_perplexity"] = _mean(c.word_perplexity for c in ok)
            row["bits_per_byte"] = _mean(c.bits_per_byte for c in ok)
            row["bits_per_clean_byte"] = _mean(c.bits_per_clean_byte for c in ok)
            if clean is not None:  # clean's own rise is 0: kept so the CSV's columns are full
                if clean.word_perplexity is not None:
                    row["ppl_increase"] = row["word_perplexity"] - clean.word_perplexity
                if clean.bits_per_clean_byte is not None:
                    row["bits_rise"] = row["bits_per_clean_byte"] - clean.bits_per_clean_byte
            rise = _add_intervals(row, run_dir, ok, clean_docs, options)
        rows.append(row)
        if noise != CLEAN:
            rises.append(rise)
    return rows, rises


def _documents(run_dir: Path, result: CellResult) -> stats.DocumentArrays | None:
    try:
        docs = results_io.read_documents(run_dir, result)
    except BadInput:
        return None
    return stats.DocumentArrays.from_documents(docs) if docs else None


def _add_intervals(row: dict, run_dir: Path, ok: list[CellResult], clean_docs, options: ReportOptions):
    """Fills the row's intervals; returns the paired rise metric (for the leaderboard) or None."""
    arrays = [_documents(run_dir, c) for c in ok]
    if any(a is None for a in arrays) or len({len(a) for a in arrays}) != 1:
        return None
    n = len(arrays[0])
    bits = stats.mean_of([stats.bits_per_clean_byte(a) for a in arrays])
    metrics = {
        "word_perplexity": stats.mean_of([stats.word_perplexity(a) for a in arrays]),
        "bits_per_byte": stats.mean_of([stats.bits_per_byte(a) for a in arrays]),
        "bits_per_clean_byte": bits,
    }
    rise = None
    if clean_docs is not None and len(clean_docs) == n:
        metrics["ppl_increase"] = stats.difference(metrics["word_perplexity"], stats.word_perplexity(clean_docs))
        rise = metrics["bits_rise"] = stats.difference(bits, stats.bits_per_clean_byte(clean_docs))
    if n < MIN_DOCUMENTS:
        row["interval"] = interval_note(n)
        return (rise, n) if rise is not None else None
    for name, metric in metrics.items():
        interval = _bootstrap(metric, n, options)
        row[f"{name}_low"], row[f"{name}_high"] = interval.low, interval.high
    return (rise, n) if rise is not None else None


def _bootstrap(metric, n: int, options: ReportOptions) -> stats.Interval:
    return stats.bootstrap(metric, n, confidence=options.confidence, replicates=options.replicates,
                           seed=options.seed)


def _leaderboard_row(rows: list[dict], rises: list, options: ReportOptions) -> dict:
    """One model: clean bits per (clean) byte with its interval, and the mean rise over the noises of its run
    (paired: every noise and the clean cell share each replicate's document draws). The mean needs every noise
    scored; otherwise it is nan and the row says which noises are missing."""
    clean = next((r for r in rows if r["noise"] == CLEAN), None)
    noisy = [r for r in rows if r["noise"] != CLEAN]
    first = rows[0]
    entry = {"label": first["label"], "model": first["model"], "run": first["run"], "level": first["level"],
             "architecture": first["architecture"], "documents": first["documents"], "noises": len(noisy),
             "clean_bits_per_byte": math.nan, "clean_bits_per_byte_low": math.nan,
             "clean_bits_per_byte_high": math.nan, "mean_rise": math.nan, "mean_rise_low": math.nan,
             "mean_rise_high": math.nan, "interval": first["interval"], "missing": None}
    if clean is not None and clean["status"] == "ok":
        entry.update(clean_bits_per_byte=clean["bits_per_clean_byte"],
                     clean_bits_per_byte_low=clean["bits_per_clean_byte_low"],
                     clean_bits_per_byte_high=clean["bits_per_clean_byte_high"])
    missing = [r["noise"] for r in noisy if not math.isfinite(r["bits_rise"])]
    if clean is None or clean["status"] != "ok":
        missing = ["clean"] + missing
    if missing or not noisy:
        entry["missing"] = ", ".join(missing) if missing else "no noises in the run"
        return entry
    entry["mean_rise"] = sum(r["bits_rise"] for r in noisy) / len(noisy)
    if all(r is not None for r in rises) and len({n for _, n in rises}) == 1:
        n = rises[0][1]
        if n >= MIN_DOCUMENTS:
            interval = _bootstrap(stats.mean_of([m for m, _ in rises]), n, options)
            entry["mean_rise_low"], entry["mean_rise_high"] = interval.low, interval.high
    return entry


def rank_leaderboard(entries: list[dict]):
    """The leaderboard as a DataFrame, most robust first (smallest mean rise); models without a mean last."""
    import pandas as pd

    columns = ["rank", "label", "model", "run", "level", "architecture", "documents", "noises", "mean_rise",
               "mean_rise_low", "mean_rise_high", "clean_bits_per_byte", "clean_bits_per_byte_low",
               "clean_bits_per_byte_high", "interval", "missing"]
    ordered = sorted(entries, key=lambda e: (not math.isfinite(e["mean_rise"]), e["mean_rise"]
                                             if math.isfinite(e["mean_rise"]) else 0.0))
    for rank, e in enumerate(ordered, start=1):
        e["rank"] = rank if math.isfinite(e["mean_rise"]) else None
    return pd.DataFrame(ordered, columns=columns)


CSV_COLUMNS = ["label", "model", "run", "corpus", "corpus_sha256", "noise", "seeds", "documents", "clean_bytes",
               "level", "architecture", "status"] + [f"{m}{s}" for m in METRICS for s in ("", "_low", "_high")] + [
               "interval", "error", "undefined"]
