"""The CI gate: compare a candidate run against a baseline run, cell by cell, paired over documents.

Pairing: cells are matched by (corpus sha256, noise, seed) when each run holds one model (the usual
"new checkpoint vs last checkpoint" case, where the two model names differ), and by model too when either run
holds several (model_key: the model's name with its path normalised, the same key for task cells).

For each pair, a paired bootstrap over documents (the same document draws on both sides) gives
  Δ bits per clean byte      = candidate − baseline          (positive = worse)
  Δ word-PPL increase        = candidate increase − baseline increase, the increase being noisy
                               word-PPL − clean word-PPL of the same run (noisy cells only)
  increase ratio             = candidate increase / baseline increase (noisy cells, baseline increase > 0)

A pair REGRESSES when, at the chosen confidence (two-sided percentile interval):
  * the lower bound of Δ bits per clean byte exceeds --max-bpb-increase, or
  * --max-ppl-increase-ratio R is given and the lower bound of the increase ratio exceeds R (where the
    baseline's increase is not positive, R times it allows none: the lower bound of the candidate's increase
    exceeds 0), or
  * the candidate's cell failed where the baseline's succeeded.
So a regression must be both larger than the threshold and statistically clear of it. A pair
IMPROVES when the upper bound of Δ bits per clean byte is below 0.

The gate fails closed. It passes (exit 0) only when every cell of the baseline was compared and none
regressed; it fails (exit 1) on any regression; runs that cannot be compared (different corpora, no
common cells, documents that do not line up, a stored cell whose values or labels do not follow from its
per-document records, a field of the wrong type) are exit 2, and so is a comparison with gaps: a baseline cell
the candidate lacks, a baseline cell that failed, or a threshold that could not be checked (a word-PPL increase
ratio asked for where a word-PPL is undefined); `allow_missing` lets those pass, listed as not compared.

What the gate writes besides its exit code: a Markdown summary (markdown), and the same verdicts as JSON
(gate_document: every pair with its key, both sides' values, each delta with its interval and threshold, the
verdict and the exit reason) and as JUnit XML (junit_xml: one testcase per pair), for CI systems.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

from robustbench_bytes.results import metrics
from robustbench_bytes import results as results_io
from robustbench_bytes import stats
from robustbench_bytes.errors import BadInput, NotComparable
from robustbench_bytes.gate.stored import check_failed_cell_name, check_types, refuse, stored_problem
from robustbench_bytes.formatting import (NA, format_interval, format_ppl, format_ratio, format_signed,
                                          short_model_labels)
from robustbench_bytes.results.schema import CLEAN, CellResult, metric_value

REGRESSED, NOT_COMPARABLE = 1, 2  # the gate's exit codes (0: passed)
GATE_FORMAT = "robustbench-compare/1"


def gate_exit_code(regressed: bool, gaps: bool, allow_missing: bool) -> int:
    """1 when anything regressed; else 2 when something the baseline measured went unchecked (unless that is
    allowed); else 0."""
    if regressed:
        return REGRESSED
    return NOT_COMPARABLE if gaps and not allow_missing else 0


def combined_exit_code(*codes: int) -> int:
    """Several gates as one: a regression anywhere is 1; else a gap anywhere is 2; else 0."""
    return REGRESSED if REGRESSED in codes else (NOT_COMPARABLE if NOT_COMPARABLE in codes else 0)


@dataclass(frozen=True)
class Thresholds:
    """Every threshold of the gate (perplexity and task cells) and the bootstrap's settings."""

    max_bpb_increase: float = 0.01
    max_ppl_increase_ratio: float | None = None
    confidence: float = 0.95
    replicates: int = stats.DEFAULT_REPLICATES
    allow_missing: bool = False
    max_acc_drop: float = 0.02

    def __post_init__(self):
        if not math.isfinite(self.max_bpb_increase):
            raise BadInput(f"max_bpb_increase={self.max_bpb_increase}: expected a finite number")
        if self.max_ppl_increase_ratio is not None and not (math.isfinite(self.max_ppl_increase_ratio)
                                                            and self.max_ppl_increase_ratio > 0):
            raise BadInput(f"max_ppl_increase_ratio={self.max_ppl_increase_ratio}: expected a finite number > 0")
        if not (0.5 <= self.confidence < 1):  # also rejects nan
            raise BadInput(f"confidence={self.confidence}: expected a number in [0.5, 1)")
        if isinstance(self.replicates, bool) or not isinstance(self.replicates, int) \
                or not 10 <= self.replicates <= stats.MAX_REPLICATES:
            raise BadInput(f"replicates={self.replicates}: expected an integer from 10 to {stats.MAX_REPLICATES:,}")
        if not (math.isfinite(self.max_acc_drop) and 0 <= self.max_acc_drop <= 1):
            raise BadInput(f"max_acc_drop={self.max_acc_drop}: expected a number in [0, 1]")

    def as_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# ---------------------------------------------------------------- what both gates share: keys and stored cells

def model_key(result) -> str:
    """The model part of a pairing key, the same for perplexity and task cells: the model's name (a checkpoint's
    path, a zoo name, hf:PATH) with its path normalised, so that `--model ckpt/new/` and `--model ckpt/new` are
    one model."""
    name = result.model or result.model_spec
    prefix = "hf:" if name.startswith("hf:") else ""
    rest = name[len(prefix):]
    return prefix + os.path.normpath(rest) if rest else name


def pair_by_model(base_results, cand_results) -> bool:
    """Whether cells are paired by model too: when either run holds more than one model (one model each: the
    baseline's model against the candidate's, whatever their names)."""
    return len({model_key(r) for r in base_results}) > 1 or len({model_key(r) for r in cand_results}) > 1


@dataclass
class PairResult:
    model: str
    noise: str
    seed: object
    baseline_bpcb: float | None = None
    candidate_bpcb: float | None = None
    delta_bpcb: stats.Interval | None = None
    baseline_increase: float | None = None
    candidate_increase: float | None = None
    delta_increase: stats.Interval | None = None
    increase_ratio: stats.Interval | None = None
    # where the baseline's word-PPL increase is not positive, R times it allows none: the candidate's own increase
    candidate_increase_ci: stats.Interval | None = None
    # the metric table's metrics the gate reports, not gates: name -> (baseline, candidate, Δ interval)
    reported: dict = field(default_factory=dict)
    verdict: str = "unchanged"  # regressed | improved | unchanged | not compared
    reasons: list[str] = field(default_factory=list)
    devices: tuple[str | None, str | None] = (None, None)  # (baseline, candidate) cell's device
    dtypes: tuple[str | None, str | None] = (None, None)  # and dtype: a difference is reported, not gated
    key: dict = field(default_factory=dict)  # what paired the two cells (model?, corpus sha256, noise, seed)
    specs: tuple[str, str] = ("", "")  # (baseline, candidate) model as the runs named it
    models: tuple[str, str] = ("", "")  # and as results name it (display names)
    cells: tuple[str, str] = ("", "")  # (baseline, candidate) cell names

    @property
    def setup_differences(self) -> list[str]:
        """'device cpu → cuda:0' / 'dtype ...' where both cells record it and the two differ."""
        return [f"{what} {a} → {b}" for what, (a, b) in (("device", self.devices), ("dtype", self.dtypes))
                if a is not None and b is not None and a != b]

    @property
    def name(self) -> str:
        return f"{self.model} / {self.noise} / seed {self.seed}"


class Verdicts:
    """What a comparison of either kind (cells, task cells) concludes from its pairs (each with a `verdict`, a
    `name` and `reasons`), the baseline cells the candidate lacks and its thresholds."""

    @property
    def regressions(self) -> list:
        return [p for p in self.pairs if p.verdict == "regressed"]

    @property
    def gaps(self) -> list[str]:
        """What the baseline measured and this comparison could not check."""
        failed = [f"{p.name} ({'; '.join(p.reasons)})" for p in self.pairs if p.verdict == "not compared"]
        return [f"{c} (missing from the candidate)" for c in self.only_baseline] + failed

    @property
    def exit_code(self) -> int:
        return gate_exit_code(bool(self.regressions), bool(self.gaps), self.thresholds.allow_missing)

    @property
    def empty(self) -> bool:
        return not self.pairs and not self.only_baseline


@dataclass
class Comparison(Verdicts):
    baseline: Path
    candidate: Path
    pairs: list[PairResult]
    thresholds: Thresholds
    by_model: bool
    only_baseline: list[str] = field(default_factory=list)  # cells the candidate run lacks
    only_candidate: list[str] = field(default_factory=list)

    def records(self) -> list[dict]:
        return pair_records(self)

    def markdown(self) -> str:
        return markdown(self)


def _corpus_id(result: CellResult, manifest: dict) -> str:
    return (result.corpus_sha256 or (manifest.get("corpus") or {}).get("sha256") or f"name:{result.corpus}")


def _index(run_dir: Path, results: list[CellResult], by_model: bool) -> dict[tuple, CellResult]:
    manifest = results_io.read_manifest(run_dir)
    index = {}
    for r in results:
        key = (_corpus_id(r, manifest), r.noise, r.seed)
        if by_model:
            key = (model_key(r),) + key
        index.setdefault(key, r)
    return index


def _clean_cells(index: dict[tuple, CellResult]) -> dict[tuple, CellResult]:
    """(model?, corpus) -> the clean cell of that group."""
    return {key[:-2]: r for key, r in index.items() if key[-2] == CLEAN and r.ok}


def _documents(run_dir: Path, result: CellResult, side: str) -> stats.DocumentArrays:
    """The per-document sums of a listed ok cell, after checking that what the listing says of the cell follows
    from them (stored_problem); NotComparable naming the run, the cell and the fault otherwise."""
    cell = result.extra.get("cell") or result.cell
    record = results_io.read_cell(run_dir, cell)
    if record is None:
        results_io.read_documents(run_dir, result)  # raises the reason: missing, not JSON, no document list
        raise refuse(side, run_dir, cell, f"{results_io.cell_path(run_dir, cell)} is not a readable cell file")
    if not record.documents:
        raise NotComparable(f"{side} {run_dir}: cell {cell} has no per-document NLLs")
    why = stored_problem(result, record, cell)
    if why:
        raise refuse(side, run_dir, cell, why)
    return stats.DocumentArrays.from_documents(sorted(record.documents, key=lambda d: d.index))


def _check_aligned(a: stats.DocumentArrays, b: stats.DocumentArrays, what: str) -> None:
    if len(a) != len(b):
        raise NotComparable(f"{what}: baseline has {len(a)} documents, candidate {len(b)}; "
                           f"runs must score the same corpus")
    if not (a.clean_bytes == b.clean_bytes).all():
        raise NotComparable(f"{what}: documents differ in clean bytes; runs must score the same corpus")


def _describe_corpora(results: list[CellResult], manifest: dict) -> str:
    names = sorted({f"{r.corpus} (sha256 {_corpus_id(r, manifest)[:12]})" for r in results})
    return ", ".join(names) or "nothing"


def compare_runs(baseline: Path | str, candidate: Path | str, thresholds: Thresholds = Thresholds()) -> Comparison:
    """The perplexity cells of the two runs, pair by pair. A baseline without perplexity cells (a task-only run)
    gives an empty comparison; the task gate (compare_tasks) then decides."""
    baseline, candidate = Path(baseline), Path(candidate)
    base_results = results_io.read_results(baseline)
    cand_results = results_io.read_results(candidate)
    check_types(base_results, "baseline", baseline, results_io.RESULTS_FILE)
    check_types(cand_results, "candidate", candidate, results_io.RESULTS_FILE)
    if not base_results:
        return Comparison(baseline, candidate, [], thresholds, by_model=False)
    if not cand_results:
        raise NotComparable(f"candidate {candidate}: holds no perplexity cells; the baseline holds "
                           f"{len(base_results)}")
    sides = _Sides(baseline, candidate)
    for side, results in (("baseline", base_results), ("candidate", cand_results)):
        for r in results:  # every listed cell, paired or not: an edited label would otherwise unpair it unseen
            sides.verify(side, r)
    base_manifest, cand_manifest = results_io.read_manifest(baseline), results_io.read_manifest(candidate)
    base_corpora = {_corpus_id(r, base_manifest) for r in base_results}
    cand_corpora = {_corpus_id(r, cand_manifest) for r in cand_results}
    if not base_corpora & cand_corpora:
        raise NotComparable(f"the runs scored different corpora: baseline {_describe_corpora(base_results, base_manifest)}"
                           f", candidate {_describe_corpora(cand_results, cand_manifest)}")

    by_model = pair_by_model(base_results, cand_results)
    base_index = _index(baseline, base_results, by_model)
    cand_index = _index(candidate, cand_results, by_model)
    common = [k for k in base_index if k in cand_index]
    if not common:
        what = "(model, noise, seed)" if by_model else "(noise, seed)"
        raise NotComparable(f"no common cells: no {what} on the same corpus is in both {baseline} and {candidate}")
    base_clean, cand_clean = _clean_cells(base_index), _clean_cells(cand_index)

    pairs = []
    for key in common:
        base, cand = base_index[key], cand_index[key]
        pairs.append(_compare_pair(key, base, cand, base_clean.get(key[:-2]), cand_clean.get(key[:-2]), sides,
                                   thresholds))

    def describe(key):
        model = f"{key[0]} " if by_model else ""
        return f"{model}{key[-2]} (seed {key[-1]})"

    return Comparison(baseline, candidate, pairs, thresholds, by_model,
                      only_baseline=[describe(k) for k in base_index if k not in cand_index],
                      only_candidate=[describe(k) for k in cand_index if k not in base_index])


class _Sides:
    """Both runs' verified per-document sums, read once per cell."""

    def __init__(self, baseline: Path, candidate: Path):
        self.dirs = {"baseline": baseline, "candidate": candidate}
        self.cache: dict[tuple[str, str], stats.DocumentArrays] = {}

    def verify(self, side: str, result: CellResult) -> None:
        if result.ok:
            self.documents(side, result)
        else:
            check_failed_cell_name(result, side, self.dirs[side])

    def documents(self, side: str, result: CellResult) -> stats.DocumentArrays:
        key = (side, result.extra.get("cell") or result.cell)
        if key not in self.cache:
            self.cache[key] = _documents(self.dirs[side], result, side)
        return self.cache[key]


def _compare_pair(key, base: CellResult, cand: CellResult, base_clean, cand_clean, sides: _Sides,
                  th: Thresholds) -> PairResult:
    model = base.model if len(key) == 4 else f"{base.model} → {cand.model}"
    pair = PairResult(model=model, noise=base.noise, seed=base.seed, devices=(base.device, cand.device),
                      dtypes=(base.dtype, cand.dtype), specs=(base.model_spec, cand.model_spec),
                      models=(base.model, cand.model),
                      cells=(base.extra.get("cell") or base.cell, cand.extra.get("cell") or cand.cell),
                      key=dict(zip(("model", "corpus_sha256", "noise", "seed")[4 - len(key):], key)))
    if not base.ok:
        pair.verdict = "not compared"
        pair.reasons.append(f"baseline cell failed ({base.error})")
        return pair
    pair.baseline_bpcb = base.bits_per_clean_byte
    if not cand.ok:
        pair.verdict = "regressed"
        pair.reasons.append(f"candidate cell failed: {cand.error}")
        return pair
    pair.candidate_bpcb = cand.bits_per_clean_byte
    b_docs, c_docs = sides.documents("baseline", base), sides.documents("candidate", cand)
    _check_aligned(b_docs, c_docs, pair.name)
    n = len(b_docs)

    def interval(metric):
        return stats.bootstrap(metric, n, confidence=th.confidence, replicates=th.replicates)

    pair.delta_bpcb = interval(stats.difference(stats.metric(metrics.PRIMARY, c_docs),
                                                stats.metric(metrics.PRIMARY, b_docs)))
    pair.reported = {spec.name: _reported(spec, base, cand, b_docs, c_docs, interval) for spec in metrics.gate_specs()}
    unchecked = _word_ppl_increases(pair, base, cand, base_clean, cand_clean, sides, interval, th)

    if pair.delta_bpcb.low > th.max_bpb_increase:
        pair.verdict = "regressed"
        pair.reasons.append(f"bits per clean byte up by {format_signed(pair.delta_bpcb.estimate)} "
                            f"(interval low {format_signed(pair.delta_bpcb.low)} > {th.max_bpb_increase:g})")
    if pair.increase_ratio is not None and th.max_ppl_increase_ratio is not None \
            and pair.increase_ratio.low > th.max_ppl_increase_ratio:
        pair.verdict = "regressed"
        pair.reasons.append(f"word-PPL increase {format_ratio(pair.increase_ratio.estimate)}x the baseline's "
                            f"(interval low {format_ratio(pair.increase_ratio.low)} > {th.max_ppl_increase_ratio:g})")
    if pair.candidate_increase_ci is not None and pair.candidate_increase_ci.low > 0:
        pair.verdict = "regressed"
        pair.reasons.append(f"word-PPL increase {_signed_ppl(pair.candidate_increase_ci.estimate)} where the "
                            f"baseline's is {_signed_ppl(pair.baseline_increase)} (interval low "
                            f"{_signed_ppl(pair.candidate_increase_ci.low)} > 0)")
    if unchecked:
        pair.reasons.append(f"--max-ppl-increase-ratio could not be checked: {unchecked}")
        if pair.verdict != "regressed":
            pair.verdict = "not compared"
    if pair.verdict == "unchanged" and pair.delta_bpcb.high < 0:
        pair.verdict = "improved"
    return pair


def _reported(spec, base: CellResult, cand: CellResult, b_docs, c_docs, interval) -> tuple:
    """(baseline value, candidate value, paired interval of candidate - baseline) of a metric the gate reports
    without gating it (metrics.MetricSpec.gate); no interval where either side's value is undefined."""
    values = (metric_value(base, spec.name), metric_value(cand, spec.name))
    if None in values:
        return (*values, None)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return (*values, interval(stats.difference(stats.metric(spec.name, c_docs), stats.metric(spec.name, b_docs))))


def _word_ppl_increases(pair: PairResult, base, cand, base_clean, cand_clean, sides: _Sides, interval,
                        th: Thresholds) -> str | None:
    """Fills the pair's word-PPL increases (noisy cells) and, when --max-ppl-increase-ratio is given, their ratio;
    returns why that ratio could not be computed (a gap, not a pass), None when it was or was not asked for."""
    if pair.noise == CLEAN:
        return None
    if base_clean is None or cand_clean is None:
        return "no clean cell of the same model to measure the increase from" if th.max_ppl_increase_ratio else None
    b_docs, c_docs = sides.documents("baseline", base), sides.documents("candidate", cand)
    bc_docs, cc_docs = sides.documents("baseline", base_clean), sides.documents("candidate", cand_clean)
    n = len(b_docs)
    if len(bc_docs) != n or len(cc_docs) != n:
        return "the clean cell scored other documents" if th.max_ppl_increase_ratio else None
    base_inc = stats.difference(stats.metric("word_perplexity", b_docs), stats.metric("word_perplexity", bc_docs))
    cand_inc = stats.difference(stats.metric("word_perplexity", c_docs), stats.metric("word_perplexity", cc_docs))
    pair.baseline_increase = _difference(base.word_perplexity, base_clean.word_perplexity)
    pair.candidate_increase = _difference(cand.word_perplexity, cand_clean.word_perplexity)
    undefined = [f"the {side} word-PPL of {what} is undefined ({why})"
                 for side, what, r in (("baseline", "noise " + pair.noise, base), ("baseline", "clean", base_clean),
                                       ("candidate", "noise " + pair.noise, cand), ("candidate", "clean", cand_clean))
                 for why in [(r.undefined or {}).get("word_perplexity") or "no value"] if r.word_perplexity is None]
    if not undefined:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            pair.delta_increase = interval(stats.difference(cand_inc, base_inc))
    if th.max_ppl_increase_ratio is None:
        return None
    if undefined:
        return undefined[0]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if pair.baseline_increase > 0:
            pair.increase_ratio = interval(stats.ratio(cand_inc, base_inc))
        else:  # noise cost the baseline nothing: R times that allows the candidate no increase either
            pair.candidate_increase_ci = interval(cand_inc)
    checked = pair.increase_ratio or pair.candidate_increase_ci
    if not (math.isfinite(checked.low) and math.isfinite(checked.estimate)):
        pair.increase_ratio = pair.candidate_increase_ci = None
        return "the increase " + ("ratio " if pair.baseline_increase > 0 else "") + "has no finite interval"
    return None


def _difference(a: float | None, b: float | None) -> float | None:
    """a - b; None when either is undefined (a word perplexity past the largest float)."""
    return None if a is None or b is None else a - b


def _signed_ppl(value: float | None) -> str:
    """A word-PPL increase as every table writes a word-PPL (formatting.format_ppl), signed."""
    return format_signed(value, format_ppl)


_VERDICT_MARK = {"regressed": "❌ regressed", "improved": "✅ improved", "unchanged": "unchanged",
                 "not compared": "⚠️ not compared"}


def model_column(pairs) -> list[str]:
    """Each pair's model as tables show it: short labels (formatting.short_model_labels; the full names are in the
    JSON), 'old → new' where the two runs' models differ."""
    labels = short_model_labels(m for p in pairs for m in p.models)
    return [labels[a] if a == b else f"{labels[a]} → {labels[b]}" for a, b in (p.models for p in pairs)]


def verdict_text(verdict: str, reasons: list[str]) -> str:
    """A pair's verdict cell of a Markdown table (its reasons after it; no `|`)."""
    text = _VERDICT_MARK[verdict] + (": " + "; ".join(reasons) if reasons else "")
    return text.replace("|", "/")


def markdown(comparison: Comparison) -> str:
    """The perplexity cells' part of the summary: the rule, a table of pairs, warnings; '' when there are none."""
    if comparison.empty:
        return ""
    th = comparison.thresholds
    pct = f"{th.confidence:.0%}"
    rule = (f"a cell regresses when the lower bound of the {pct} paired-bootstrap interval of Δ bits per clean "
            f"byte exceeds {th.max_bpb_increase:+g}")
    if th.max_ppl_increase_ratio is not None:
        rule += (f", or when that of the candidate's word-PPL increase over the baseline's exceeds "
                 f"{th.max_ppl_increase_ratio:g}x (where the baseline's increase is not positive: when that of the "
                 f"candidate's increase exceeds 0)")
    rule += ", or when the candidate's cell failed."
    improved = sum(p.verdict == "improved" for p in comparison.pairs)
    unchanged = sum(p.verdict == "unchanged" for p in comparison.pairs)
    unchecked = sum(p.verdict == "not compared" for p in comparison.pairs)
    labels = dict(zip(map(id, comparison.pairs), model_column(comparison.pairs)))
    primary, reported = metrics.METRICS[metrics.PRIMARY], metrics.gate_specs()
    lines = ["", "### Bits per clean byte", "",
             f"{len(comparison.regressions)} of {len(comparison.pairs)} cells regressed, {improved} improved, "
             f"{unchanged} unchanged" + (f", {unchecked} not compared" if unchecked else "") + ". Cells paired by "
             + ("model, noise and seed" if comparison.by_model else "noise and seed") + f" on the same corpus; {rule}",
             "", "| model | noise | seed | bits/clean byte (base → cand) | Δ bits/clean byte "
             f"[{pct}] | word-PPL increase (base → cand) | Δ increase [{pct}] | "
             + "".join(f"{s.label} (base → cand) | Δ {s.label} [{pct}] | " for s in reported) + "verdict |",
             "|---|---|---:|---:|---:|---:|---:|" + "---:|---:|" * len(reported) + "---|"]
    for p in comparison.pairs:
        bpcb = f"{primary.format(p.baseline_bpcb)} → {primary.format(p.candidate_bpcb)}"
        increase = (NA if p.baseline_increase is None and p.candidate_increase is None else
                    f"{_signed_ppl(p.baseline_increase)} → {_signed_ppl(p.candidate_increase)}")
        lines.append(f"| {labels[id(p)].replace('|', '/')} | `{p.noise}` | {p.seed} | {bpcb} | "
                     f"{format_interval(p.delta_bpcb, format_signed)} | {increase} | "
                     f"{format_interval(p.delta_increase, _signed_ppl)} | "
                     + "".join(_reported_cells(p, s) for s in reported) + f"{verdict_text(p.verdict, p.reasons)} |")
    mismatched = [p for p in comparison.pairs if p.setup_differences]
    if mismatched:
        lines += ["", f"⚠️ Warning: {len(mismatched)} paired cell(s) ran on a different device or dtype, so part of "
                  "a difference may come from the arithmetic rather than the model: "
                  + "; ".join(f"{labels[id(p)]} / `{p.noise}` / seed {p.seed}: {', '.join(p.setup_differences)}"
                              for p in mismatched) + "."]
    if comparison.only_baseline:
        lines += ["", "Not compared, missing from the candidate run: "
                  + ", ".join(f"`{c}`" for c in comparison.only_baseline) + "."]
    if comparison.only_candidate:
        lines += ["", "Not compared, missing from the baseline run: "
                  + ", ".join(f"`{c}`" for c in comparison.only_candidate) + "."]
    return "\n".join(lines) + "\n"


def _reported_cells(pair: PairResult, spec) -> str:
    """A reported metric's two Markdown cells of a pair: both sides' values, and the change with its interval."""
    if spec.name not in pair.reported:
        return f"{NA} | {NA} | "
    base, cand, delta = pair.reported[spec.name]
    return (f"{spec.format(base)} → {spec.format(cand)} | "
            f"{format_interval(delta, lambda v: format_signed(v, spec.format))} | ")


def _interval_json(interval: stats.Interval | None) -> dict | None:
    return None if interval is None else {"estimate": interval.estimate, "low": interval.low, "high": interval.high,
                                          "confidence": interval.confidence}


def check_json(metric: str, baseline, candidate, delta: stats.Interval | None, threshold, rule: str) -> dict:
    """One checked quantity of a pair, for the JSON: both sides' values, the delta with its interval, the
    threshold and the rule that compares them."""
    return {"metric": metric, "baseline": baseline, "candidate": candidate, "delta": _interval_json(delta),
            "threshold": threshold, "regresses_when": rule}


def pair_records(comparison: Comparison) -> list[dict]:
    """Every perplexity pair as the JSON output lists it."""
    th = comparison.thresholds
    records = []
    for p, label in zip(comparison.pairs, model_column(comparison.pairs)):
        checks = [check_json("bits_per_clean_byte", p.baseline_bpcb, p.candidate_bpcb, p.delta_bpcb,
                             th.max_bpb_increase, "delta.low > threshold"),
                  check_json("word_ppl_increase", p.baseline_increase, p.candidate_increase, p.delta_increase,
                             None, "reported, not gated")]
        checks += [check_json(name, b, c, delta, None, "reported, not gated")
                   for name, (b, c, delta) in p.reported.items()]
        if p.candidate_increase_ci is not None:
            checks.append(check_json("candidate_word_ppl_increase", p.baseline_increase, p.candidate_increase,
                                     p.candidate_increase_ci, 0, "delta.low > threshold (the ratio's stand-in where "
                                     "the baseline's increase is not positive; delta: the candidate's increase)"))
        elif th.max_ppl_increase_ratio is not None and p.noise != CLEAN:
            checks.append(check_json("word_ppl_increase_ratio", None, None, p.increase_ratio,
                                     th.max_ppl_increase_ratio, "delta.low > threshold (delta: candidate "
                                     "increase / baseline increase)"))
        records.append({"kind": "perplexity", "name": f"{label} / {p.noise} / seed {p.seed}", "key": p.key,
                        "baseline": {"model": p.specs[0], "cell": p.cells[0], "device": p.devices[0],
                                     "dtype": p.dtypes[0]},
                        "candidate": {"model": p.specs[1], "cell": p.cells[1], "device": p.devices[1],
                                      "dtype": p.dtypes[1]},
                        "checks": checks, "verdict": p.verdict, "reasons": list(p.reasons)})
    records += [{"kind": "perplexity", "name": c, "verdict": "not compared", "reasons": ["missing from the candidate"]}
                for c in comparison.only_baseline]
    return records


# ---------------------------------------------------------------- the whole gate: its parts, verdict and outputs


@dataclass
class Gate:
    """The gate over its parts: the perplexity comparison (Comparison) and the task one (compare_tasks), each with
    pairs, regressions, gaps, exit_code, empty, records() and markdown()."""

    baseline: Path
    candidate: Path
    thresholds: Thresholds
    parts: list

    def __post_init__(self):
        if all(part.empty for part in self.parts):
            raise NotComparable(f"baseline {self.baseline}: holds no cells to compare (no perplexity cell in "
                                f"{results_io.RESULTS_FILE}, no task cell in tasks.json)")

    @property
    def exit_code(self) -> int:
        return combined_exit_code(*(part.exit_code for part in self.parts))

    @property
    def pairs(self) -> list:
        return [p for part in self.parts for p in part.pairs]

    def records(self) -> list[dict]:
        """Every pair of every part as the JSON lists it (short model labels in their names)."""
        return [r for part in self.parts for r in part.records()]

    @property
    def reason(self) -> str:
        """Why the gate exits as it does, in one line."""
        records = self.records()
        regressed = [r for r in records if r["verdict"] == "regressed"]
        gaps = [r for r in records if r["verdict"] == "not compared"]
        code, n = self.exit_code, len(self.pairs)

        def first(rs):
            return f"{rs[0]['name']}: {'; '.join(rs[0]['reasons'])}"

        if code == REGRESSED:
            return f"{len(regressed)} of {n} cells regressed (first: {first(regressed)})"
        if code == NOT_COMPARABLE:
            return f"{len(gaps)} baseline cell(s) could not be checked (first: {first(gaps)})"
        return f"no regression in {n} cells" + (f", {len(gaps)} not compared (allowed)" if gaps else "")

    def headline(self) -> str:
        code = self.exit_code
        if code == REGRESSED:
            return f"**FAIL: {self.reason}.**"
        if code == NOT_COMPARABLE:
            return f"**FAIL: not comparable: {self.reason}** (pass --allow-missing to accept that)."
        return f"**PASS: {self.reason}.**"

    def markdown(self) -> str:
        return "\n".join(["## robustbench compare", "", self.headline(), "",
                          f"Baseline `{self.baseline}`, candidate `{self.candidate}`."]) + "\n" + "".join(
            part.markdown() for part in self.parts)

    def document(self) -> dict:
        return gate_document(self.baseline, self.candidate, self.thresholds, self.records(), self.exit_code,
                             self.reason)


def refused_markdown(reason: str) -> str:
    """The summary of a gate that could not compare the runs at all."""
    return f"## robustbench compare\n\n**Cannot compare:** {reason}\n"


def gate_document(baseline: Path, candidate: Path, thresholds: Thresholds | None, records: list[dict],
                  code: int, reason: str) -> dict:
    """The JSON output: the runs, the thresholds, every pair and the exit code with its reason."""
    return {"format": GATE_FORMAT, "baseline": str(baseline), "candidate": str(candidate),
            "thresholds": thresholds.as_json() if thresholds else None,
            "exit_code": code, "result": {0: "passed", REGRESSED: "regressed", NOT_COMPARABLE: "not comparable"}[code],
            "reason": reason, "pairs": records}


def _case_message(record: dict) -> str:
    """A failed pair's message: its reasons, then each checked delta with its interval and threshold."""
    formats = {"word_ppl_increase": _signed_ppl, "candidate_word_ppl_increase": _signed_ppl,
               "word_ppl_increase_ratio": format_ratio}
    parts = list(record.get("reasons") or [])
    for check in record.get("checks") or []:
        delta = check["delta"]
        if delta is not None:
            entry = metrics.spec_of(check["metric"])
            fmt = formats.get(check["metric"]) or (
                (lambda v, f=entry.format: format_signed(v, f)) if entry is not None else format_signed)
            interval = stats.Interval(delta["estimate"], delta["low"], delta["high"], delta["confidence"])
            threshold = "" if check["threshold"] is None else f", threshold {check['threshold']:g}"
            parts.append(f"Δ {check['metric']} {format_interval(interval, fmt)} at {delta['confidence']:.0%}"
                         f"{threshold}")
    return "; ".join(parts)


def junit_xml(document: dict) -> str:
    """The JSON output as JUnit XML (the structure CI systems read: testsuites > testsuite > testcase, with a
    failure per regressed pair, an error per pair that could not be checked, or skipped when that is allowed;
    a gate that could not compare the runs at all is one testcase with an error)."""
    allow_missing = bool((document.get("thresholds") or {}).get("allow_missing"))
    suites = ElementTree.Element("testsuites", name="robustbench compare")
    kinds = {}
    for record in document["pairs"]:
        kinds.setdefault(record["kind"], []).append(record)
    if not document["pairs"]:
        kinds["gate"] = [{"kind": "gate", "name": "compare", "verdict": document["result"],
                          "reasons": [document["reason"]]}]
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for kind, records in kinds.items():
        suite = ElementTree.SubElement(suites, "testsuite", name=f"robustbench compare: {kind}")
        counts = {"tests": len(records), "failures": 0, "errors": 0, "skipped": 0}
        for record in records:
            case = ElementTree.SubElement(suite, "testcase", name=record["name"],
                                          classname=f"robustbench.compare.{kind}", time="0")
            message = _case_message(record)
            if record["verdict"] == "regressed":
                counts["failures"] += 1
                ElementTree.SubElement(case, "failure", message=message, type="regression").text = message
            elif record["verdict"] in ("not compared", "not comparable") and not (
                    allow_missing and record["verdict"] == "not compared"):
                counts["errors"] += 1
                ElementTree.SubElement(case, "error", message=message, type=record["verdict"]).text = message
            elif record["verdict"] == "not compared":
                counts["skipped"] += 1
                ElementTree.SubElement(case, "skipped", message=message)
        suite.attrib.update({k: str(v) for k, v in counts.items()}, time="0")
        totals = {k: totals[k] + counts[k] for k in totals}
    suites.attrib.update({k: str(v) for k, v in totals.items() if k != "skipped"}, time="0")
    ElementTree.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(suites, encoding="unicode") + "\n"


def write_outputs(document: dict, json_path: Path | None, junit_path: Path | None) -> None:
    """The JSON and JUnit files, each written atomically."""
    from robustbench_bytes.files import write_text_atomic

    if json_path is not None:
        write_text_atomic(json_path, results_io.json_text(document) + "\n")
    if junit_path is not None:
        write_text_atomic(junit_path, junit_xml(document))
