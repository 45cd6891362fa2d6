"""The report's table: one row per (run, model, noise), estimates with bootstrap intervals over documents.

Point estimates are results.json's numbers (the mean over seeds when a noise has several); the
intervals come from a bootstrap over documents of the per-document NLLs (stats.py), with the
same document draws for the clean and the noisy cell, so the interval of an increase is paired.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from robustbench_bytes import results as results_io
from robustbench_bytes import stats
from robustbench_bytes.errors import BadInput
from robustbench_bytes.result_schema import CLEAN, CellResult

METRICS = ("word_perplexity", "ppl_increase", "bits_per_byte", "bits_per_clean_byte")
METRIC_LABELS = {
    "word_perplexity": "word-PPL",
    "ppl_increase": "increase",
    "bits_per_byte": "bits/byte",
    "bits_per_clean_byte": "bits/clean byte",
}


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


def build_table(run_dirs: list[Path | str], options: ReportOptions = ReportOptions()):
    """One row per (run, model, noise), seeds pooled by their mean: estimates and intervals."""
    import pandas as pd

    run_dirs = [results_io.check_run_dir(d) for d in run_dirs]
    check_distinct_runs(run_dirs)
    several_runs = len(run_dirs) > 1
    rows = []
    for run_dir in run_dirs:
        groups: dict[str, list[CellResult]] = {}
        for r in results_io.read_results(run_dir):
            groups.setdefault(r.model_spec, []).append(r)
        for cells in groups.values():
            rows.extend(_model_rows(run_dir, cells, several_runs, options))
    if not rows:
        raise BadInput(f"{', '.join(map(str, run_dirs))}: no results to report")
    return pd.DataFrame(rows)


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


def _model_rows(run_dir: Path, cells: list[CellResult], several_runs: bool, options: ReportOptions) -> list[dict]:
    model = cells[0].model
    label = _group_label(str(run_dir), model, several_runs)
    clean = next((c for c in cells if c.is_clean and c.ok), None)
    clean_docs = _documents(run_dir, clean) if clean else None
    by_noise: dict[str, list[CellResult]] = {}
    for c in cells:
        by_noise.setdefault(c.noise, []).append(c)
    noises = [CLEAN] + [n for n in by_noise if n != CLEAN] if CLEAN in by_noise else list(by_noise)
    rows = []
    for noise in noises:
        group = by_noise[noise]
        ok = [c for c in group if c.ok]
        failed = [c for c in group if not c.ok]
        first = group[0]
        row = {
            "run": str(run_dir), "label": label, "model": model, "corpus": first.corpus,
            "corpus_sha256": first.corpus_sha256, "noise": noise,
            "seeds": ",".join(str(c.seed) for c in ok), "documents": first.documents,
            "level": first.level, "architecture": first.architecture,
            "status": "ok" if not failed else ("failed" if not ok else f"{len(failed)} seed(s) failed"),
            "error": "; ".join(str(c.error) for c in failed) or None,
            "undefined": "; ".join(sorted({f"{k}: {v}" for c in ok for k, v in c.undefined.items()})) or None,
        }
        for metric in METRICS:
            row.update({metric: math.nan, f"{metric}_low": math.nan, f"{metric}_high": math.nan})
        if ok:
            row["word_perplexity"] = _mean(c.word_perplexity for c in ok)
            row["bits_per_byte"] = _mean(c.bits_per_byte for c in ok)
            row["bits_per_clean_byte"] = _mean(c.bits_per_clean_byte for c in ok)
            if clean is not None and clean.word_perplexity is not None:
                row["ppl_increase"] = row["word_perplexity"] - clean.word_perplexity
            _add_intervals(row, run_dir, ok, clean_docs, options)
        rows.append(row)
    return rows


def _documents(run_dir: Path, result: CellResult) -> stats.DocumentArrays | None:
    try:
        docs = results_io.read_documents(run_dir, result)
    except BadInput:
        return None
    return stats.DocumentArrays.from_documents(docs) if docs else None


def _add_intervals(row: dict, run_dir: Path, ok: list[dict], clean_docs, options: ReportOptions) -> None:
    arrays = [_documents(run_dir, c) for c in ok]
    if any(a is None for a in arrays) or len({len(a) for a in arrays}) != 1:
        return
    n = len(arrays[0])
    metrics = {
        "word_perplexity": stats.mean_of([stats.word_perplexity(a) for a in arrays]),
        "bits_per_byte": stats.mean_of([stats.bits_per_byte(a) for a in arrays]),
        "bits_per_clean_byte": stats.mean_of([stats.bits_per_clean_byte(a) for a in arrays]),
    }
    if clean_docs is not None and len(clean_docs) == n:
        metrics["ppl_increase"] = stats.difference(metrics["word_perplexity"], stats.word_perplexity(clean_docs))
    for name, metric in metrics.items():
        interval = stats.bootstrap(metric, n, confidence=options.confidence, replicates=options.replicates,
                                   seed=options.seed)
        row[f"{name}_low"], row[f"{name}_high"] = interval.low, interval.high


CSV_COLUMNS = ["label", "model", "run", "corpus", "corpus_sha256", "noise", "seeds", "documents", "level",
               "architecture", "status"] + [f"{m}{s}" for m in METRICS for s in ("", "_low", "_high")] + ["error", "undefined"]
