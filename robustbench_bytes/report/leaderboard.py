"""The leaderboard: one entry per model, ranked by its score on noised text, with paired bootstrap intervals.

The perplexity leaderboard ranks models by how well they do on noised text: the mean bits per clean byte over the
noises of the run (lower is better), beside the clean score, the rise (noised minus clean) and the relative rise
(rise / clean), each bootstrapped with the same draws for every noise and the clean text. It does not rank by the
rise: a model that is weak on clean text has less to lose, so the rise rewards it. The task leaderboards
(tasks.py) rank by the mean noised accuracy the same way, with the drop (clean minus noised) for the change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

from robustbench_bytes import stats
from robustbench_bytes.report.options import MIN_DOCUMENTS, ReportOptions, bootstrap
from robustbench_bytes.results import metrics
from robustbench_bytes.results.schema import CLEAN


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
    metric: str = metrics.PRIMARY  # the metric table's column it ranks by: its label and format write the numbers

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
            drawn = bootstrap(paired[name], n, options)
            low, high = drawn.low, drawn.high
        intervals[name] = stats.Interval(value, low, high, options.confidence)
    return LeaderboardEntry(**base, **intervals)


def perplexity_entry(rows: list[dict], noisy_metrics: list, clean_metric, options: ReportOptions) -> LeaderboardEntry:
    """One model's entry from its report rows (table.py), by metrics.PRIMARY: every noise and the clean cell share
    each replicate's document draws. The means need every noise scored; otherwise the entry is unranked and says
    which noises are missing."""
    clean = next((r for r in rows if r["noise"] == CLEAN), None)
    noisy = [r for r in rows if r["noise"] != CLEAN]
    first = rows[0]
    missing = [r["noise"] for r in noisy if r["status"] == "failed" or not math.isfinite(r[metrics.PRIMARY])]
    if clean is None or clean["status"] != "ok" or not math.isfinite(clean[metrics.PRIMARY]):
        missing = [CLEAN] + missing
    counts = {m[1] for m in noisy_metrics if m is not None}
    paired = (all(m is not None for m in noisy_metrics) and len(counts) == 1 and clean_metric is not None)
    return leaderboard_entry(
        label=first["label"], model=first["model"], run=first["run"], level=first["level"],
        architecture=first["architecture"], documents=first["documents"], noises=len(noisy),
        noised_values=[] if missing else [r[metrics.PRIMARY] for r in noisy],
        clean_value=None if clean is None else clean[metrics.PRIMARY],
        noised_metrics=[m for m, _ in noisy_metrics] if paired else None, clean_metric=clean_metric,
        n=counts.pop() if paired else 0, options=options, missing=missing, interval_note_text=first["interval"])


def rank_leaderboard(entries: list[LeaderboardEntry], confidence: float = 0.95, *,
                     measure: str = "mean noised bits per clean byte", clean_measure: str = "clean bits/byte",
                     change_name: str = "rise", higher_is_better: bool = False,
                     metric: str = metrics.PRIMARY) -> Leaderboard:
    """Best on noised text first; entries without a score last, unranked."""
    sign = -1.0 if higher_is_better else 1.0
    scored = sorted((e for e in entries if e.noised is not None), key=lambda e: sign * e.noised.estimate)
    ranked = [replace(e, rank=i) for i, e in enumerate(scored, start=1)]
    ranked += [e for e in entries if e.noised is None]
    return Leaderboard(tuple(ranked), measure, clean_measure, change_name, higher_is_better, confidence, metric)
