"""The CI gate: compare a candidate run against a baseline run, cell by cell, paired over documents.

Pairing: cells are matched by (corpus sha256, noise, seed) when each run holds one model (the usual
"new checkpoint vs last checkpoint" case, where the two model names differ), and by model name too
when either run holds several.

For each pair, a paired bootstrap over documents (the same document draws on both sides) gives
  Δ bits per clean byte      = candidate − baseline          (positive = worse)
  Δ word-PPL increase        = candidate increase − baseline increase, the increase being noisy
                               word-PPL − clean word-PPL of the same run (noisy cells only)
  increase ratio             = candidate increase / baseline increase (noisy cells, baseline increase > 0)

A pair REGRESSES when, at the chosen confidence (two-sided percentile interval):
  * the lower bound of Δ bits per clean byte exceeds --max-bpb-increase, or
  * --max-ppl-increase-ratio R is given and the lower bound of the increase ratio exceeds R, or
  * the candidate's cell failed where the baseline's succeeded.
So a regression must be both larger than the threshold and statistically clear of it. A pair
IMPROVES when the upper bound of Δ bits per clean byte is below 0.

The gate fails closed. It passes (exit 0) only when every cell of the baseline was compared and none
regressed; it fails (exit 1) on any regression; runs that cannot be compared (different corpora, no
common cells, documents that do not line up or hold a non-finite NLL) are exit 2, and so is a comparison
with gaps: a baseline cell the candidate lacks, or a baseline cell that failed (`allow_missing` lets those
pass, listed as not compared).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robustbench_bytes import results as results_io
from robustbench_bytes import stats
from robustbench_bytes.errors import NotComparable
from robustbench_bytes.formatting import NA, format_bits, format_interval, format_signed
from robustbench_bytes.result_schema import CLEAN, CellResult

REGRESSED, NOT_COMPARABLE = 1, 2  # the gate's exit codes (0: passed)


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
    max_bpb_increase: float = 0.01
    max_ppl_increase_ratio: float | None = None
    confidence: float = 0.95
    replicates: int = stats.DEFAULT_REPLICATES
    allow_missing: bool = False

    def __post_init__(self):
        from robustbench_bytes.errors import BadInput

        if not math.isfinite(self.max_bpb_increase):
            raise BadInput(f"max_bpb_increase={self.max_bpb_increase}: expected a finite number")
        if self.max_ppl_increase_ratio is not None and not (math.isfinite(self.max_ppl_increase_ratio)
                                                            and self.max_ppl_increase_ratio > 0):
            raise BadInput(f"max_ppl_increase_ratio={self.max_ppl_increase_ratio}: expected a finite number > 0")
        if not (0.5 <= self.confidence < 1):  # also rejects nan
            raise BadInput(f"confidence={self.confidence}: expected a number in [0.5, 1)")
        if self.replicates < 10:
            raise BadInput(f"replicates={self.replicates}: expected at least 10")


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
    verdict: str = "unchanged"  # regressed | improved | unchanged | not compared
    reasons: list[str] = field(default_factory=list)
    devices: tuple[str | None, str | None] = (None, None)  # (baseline, candidate) cell's device
    dtypes: tuple[str | None, str | None] = (None, None)  # and dtype: a difference is reported, not gated

    @property
    def setup_differences(self) -> list[str]:
        """'device cpu → cuda:0' / 'dtype ...' where both cells record it and the two differ."""
        return [f"{what} {a} → {b}" for what, (a, b) in (("device", self.devices), ("dtype", self.dtypes))
                if a is not None and b is not None and a != b]


@dataclass
class Comparison:
    baseline: Path
    candidate: Path
    pairs: list[PairResult]
    thresholds: Thresholds
    by_model: bool
    only_baseline: list[str] = field(default_factory=list)  # cells the candidate run lacks
    only_candidate: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[PairResult]:
        return [p for p in self.pairs if p.verdict == "regressed"]

    @property
    def gaps(self) -> list[str]:
        """What the baseline measured and this comparison could not check."""
        failed = [f"{p.model} / {p.noise} / seed {p.seed} ({'; '.join(p.reasons)})"
                  for p in self.pairs if p.verdict == "not compared"]
        return [f"{c} (missing from the candidate)" for c in self.only_baseline] + failed

    @property
    def exit_code(self) -> int:
        return gate_exit_code(bool(self.regressions), bool(self.gaps), self.thresholds.allow_missing)


Incomparable = NotComparable


def pair_by_model(base_results, cand_results) -> bool:
    """Whether cells are paired by model too: when either run holds more than one model (one model each: the
    baseline's model against the candidate's, whatever their names)."""
    return len({r.model_spec for r in base_results}) > 1 or len({r.model_spec for r in cand_results}) > 1


def _corpus_id(result: CellResult, manifest: dict) -> str:
    return (result.corpus_sha256 or (manifest.get("corpus") or {}).get("sha256") or f"name:{result.corpus}")


def _index(run_dir: Path, results: list[CellResult], by_model: bool) -> dict[tuple, CellResult]:
    manifest = results_io.read_manifest(run_dir)
    index = {}
    for r in results:
        key = (_corpus_id(r, manifest), r.noise, r.seed)
        if by_model:
            key = (r.model,) + key
        index.setdefault(key, r)
    return index


def _clean_cells(index: dict[tuple, CellResult], by_model: bool) -> dict[tuple, CellResult]:
    """(model?, corpus) -> the clean cell of that group."""
    return {key[:-2]: r for key, r in index.items() if key[-2] == CLEAN and r.ok}


def _documents(run_dir: Path, result: CellResult, side: str) -> stats.DocumentArrays:
    docs = results_io.read_documents(run_dir, result)
    if not docs:
        raise Incomparable(f"{side} {run_dir}: cell {result.cell} has no per-document NLLs")
    arrays = stats.DocumentArrays.from_documents(docs)
    if not np.isfinite(arrays.nll).all():
        bad = int(np.flatnonzero(~np.isfinite(arrays.nll))[0])
        raise Incomparable(f"{side} {run_dir}: cell {result.cell}: document {bad} has a non-finite NLL "
                           f"({arrays.nll[bad]}); rescore that run")
    return arrays


def _check_aligned(a: stats.DocumentArrays, b: stats.DocumentArrays, what: str) -> None:
    if len(a) != len(b):
        raise Incomparable(f"{what}: baseline has {len(a)} documents, candidate {len(b)}; "
                           f"runs must score the same corpus")
    if not (a.clean_bytes == b.clean_bytes).all():
        raise Incomparable(f"{what}: documents differ in clean bytes; runs must score the same corpus")


def _describe_corpora(results: list[dict], manifest: dict) -> str:
    names = sorted({f"{r.corpus} (sha256 {_corpus_id(r, manifest)[:12]})" for r in results})
    return ", ".join(names) or "nothing"


def compare_runs(baseline: Path | str, candidate: Path | str, thresholds: Thresholds = Thresholds()) -> Comparison:
    baseline, candidate = Path(baseline), Path(candidate)
    base_results = results_io.read_results(baseline)
    cand_results = results_io.read_results(candidate)
    if not base_results:
        raise Incomparable(f"baseline {baseline}: holds no cells")
    if not cand_results:
        raise Incomparable(f"candidate {candidate}: holds no cells")
    base_manifest, cand_manifest = results_io.read_manifest(baseline), results_io.read_manifest(candidate)
    base_corpora = {_corpus_id(r, base_manifest) for r in base_results}
    cand_corpora = {_corpus_id(r, cand_manifest) for r in cand_results}
    if not base_corpora & cand_corpora:
        raise Incomparable(f"the runs scored different corpora: baseline {_describe_corpora(base_results, base_manifest)}"
                           f", candidate {_describe_corpora(cand_results, cand_manifest)}")

    by_model = pair_by_model(base_results, cand_results)
    base_index = _index(baseline, base_results, by_model)
    cand_index = _index(candidate, cand_results, by_model)
    common = [k for k in base_index if k in cand_index]
    if not common:
        what = "(model, noise, seed)" if by_model else "(noise, seed)"
        raise Incomparable(f"no common cells: no {what} on the same corpus is in both {baseline} and {candidate}")
    base_clean, cand_clean = _clean_cells(base_index, by_model), _clean_cells(cand_index, by_model)

    pairs = []
    for key in common:
        base, cand = base_index[key], cand_index[key]
        pairs.append(_compare_pair(key, base, cand, base_clean.get(key[:-2]), cand_clean.get(key[:-2]),
                                   baseline, candidate, thresholds))
    def describe(key):
        model = f"{key[0]} " if by_model else ""
        return f"{model}{key[-2]} (seed {key[-1]})"

    return Comparison(baseline, candidate, pairs, thresholds, by_model,
                      only_baseline=[describe(k) for k in base_index if k not in cand_index],
                      only_candidate=[describe(k) for k in cand_index if k not in base_index])


def _compare_pair(key, base: CellResult, cand: CellResult, base_clean, cand_clean, baseline, candidate,
                  th: Thresholds) -> PairResult:
    model = base.model if key[0] == base.model and len(key) == 4 else f"{base.model} → {cand.model}"
    pair = PairResult(model=model, noise=base.noise, seed=base.seed, devices=(base.device, cand.device),
                      dtypes=(base.dtype, cand.dtype))
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
    what = f"{pair.model} / {pair.noise} / seed {pair.seed}"
    b_docs, c_docs = _documents(baseline, base, "baseline"), _documents(candidate, cand, "candidate")
    _check_aligned(b_docs, c_docs, what)
    n = len(b_docs)

    def interval(metric):
        return stats.bootstrap(metric, n, confidence=th.confidence, replicates=th.replicates)

    pair.delta_bpcb = interval(stats.difference(stats.bits_per_clean_byte(c_docs), stats.bits_per_clean_byte(b_docs)))
    if pair.noise != CLEAN and base_clean is not None and cand_clean is not None:
        bc_docs, cc_docs = _documents(baseline, base_clean, "baseline"), _documents(candidate, cand_clean, "candidate")
        if len(bc_docs) == n and len(cc_docs) == n:
            base_inc = stats.difference(stats.word_perplexity(b_docs), stats.word_perplexity(bc_docs))
            cand_inc = stats.difference(stats.word_perplexity(c_docs), stats.word_perplexity(cc_docs))
            pair.baseline_increase = _difference(base.word_perplexity, base_clean.word_perplexity)
            pair.candidate_increase = _difference(cand.word_perplexity, cand_clean.word_perplexity)
            if pair.baseline_increase is not None and pair.candidate_increase is not None:
                pair.delta_increase = interval(stats.difference(cand_inc, base_inc))
            if th.max_ppl_increase_ratio is not None and pair.delta_increase is not None \
                    and pair.baseline_increase > 0:
                pair.increase_ratio = interval(stats.ratio(cand_inc, base_inc))

    if pair.delta_bpcb.low > th.max_bpb_increase:
        pair.verdict = "regressed"
        pair.reasons.append(f"bits per clean byte up by {pair.delta_bpcb.estimate:+.4f} "
                            f"(interval low {pair.delta_bpcb.low:+.4f} > {th.max_bpb_increase:g})")
    if pair.increase_ratio is not None and th.max_ppl_increase_ratio is not None \
            and pair.increase_ratio.low > th.max_ppl_increase_ratio:
        pair.verdict = "regressed"
        pair.reasons.append(f"word-PPL increase {pair.increase_ratio.estimate:.3g}x the baseline's "
                            f"(interval low {pair.increase_ratio.low:.3g} > {th.max_ppl_increase_ratio:g})")
    if pair.verdict != "regressed" and pair.delta_bpcb.high < 0:
        pair.verdict = "improved"
    return pair


def _difference(a: float | None, b: float | None) -> float | None:
    """a - b; None when either is undefined (a word perplexity past the largest float)."""
    return None if a is None or b is None else a - b


def _signed_increase(value: float | None) -> str:
    """A word-PPL increase as the gate's table writes it: signed, thousands separated, 2 decimals."""
    return format_signed(value, lambda v: f"{v:,.2f}")


_VERDICT_MARK = {"regressed": "❌ regressed", "improved": "✅ improved", "unchanged": "unchanged",
                 "not compared": "⚠️ not compared"}


def markdown(comparison: Comparison) -> str:
    th = comparison.thresholds
    pct = f"{th.confidence:.0%}"
    rule = (f"a cell regresses when the lower bound of the {pct} paired-bootstrap interval of Δ bits per clean "
            f"byte exceeds {th.max_bpb_increase:+g}")
    if th.max_ppl_increase_ratio is not None:
        rule += (f", or when that of the candidate's word-PPL increase over the baseline's exceeds "
                 f"{th.max_ppl_increase_ratio:g}x")
    rule += ", or when the candidate's cell failed."
    regressions = comparison.regressions
    improved = sum(p.verdict == "improved" for p in comparison.pairs)
    unchanged = sum(p.verdict == "unchanged" for p in comparison.pairs)
    gaps = comparison.gaps
    if regressions:
        headline = f"**FAIL: {len(regressions)} of {len(comparison.pairs)} cells regressed.**"
    elif gaps and not th.allow_missing:
        headline = (f"**FAIL: not comparable: {len(gaps)} baseline cell(s) could not be checked** "
                    f"(pass --allow-missing to accept that).")
    else:
        headline = (f"**PASS: no regression** ({improved} improved, {unchanged} unchanged"
                    + (f", {len(gaps)} not compared (allowed)" if gaps else "") + f", {len(comparison.pairs)} cells).")
    lines = ["## robustbench compare", "", headline, "",
             f"Baseline `{comparison.baseline}`, candidate `{comparison.candidate}`; cells paired by "
             + ("model, noise and seed" if comparison.by_model else "noise and seed") + f" on the same corpus; {rule}",
             "", "| model | noise | seed | bits/clean byte (base → cand) | Δ bits/clean byte "
             f"[{pct}] | word-PPL increase (base → cand) | Δ increase [{pct}] | verdict |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for p in comparison.pairs:
        bpcb = f"{format_bits(p.baseline_bpcb)} → {format_bits(p.candidate_bpcb)}"
        increase = (NA if p.baseline_increase is None else
                    f"{_signed_increase(p.baseline_increase)} → {_signed_increase(p.candidate_increase)}")
        verdict = _VERDICT_MARK[p.verdict] + (": " + "; ".join(p.reasons) if p.reasons else "")
        lines.append(f"| {p.model.replace('|', '/')} | `{p.noise}` | {p.seed} | {bpcb} | "
                     f"{format_interval(p.delta_bpcb, format_signed)} | {increase} | "
                     f"{format_interval(p.delta_increase, _signed_increase)} | {verdict.replace('|', '/')} |")
    mismatched = [p for p in comparison.pairs if p.setup_differences]
    if mismatched:
        lines += ["", f"⚠️ Warning: {len(mismatched)} paired cell(s) ran on a different device or dtype, so part of "
                  "a difference may come from the arithmetic rather than the model: "
                  + "; ".join(f"{p.model} / `{p.noise}` / seed {p.seed}: {', '.join(p.setup_differences)}"
                              for p in mismatched) + "."]
    if comparison.only_baseline:
        lines += ["", "Not compared, missing from the candidate run: "
                  + ", ".join(f"`{c}`" for c in comparison.only_baseline) + "."]
    if comparison.only_candidate:
        lines += ["", "Not compared, missing from the baseline run: "
                  + ", ".join(f"`{c}`" for c in comparison.only_candidate) + "."]
    return "\n".join(lines) + "\n"
