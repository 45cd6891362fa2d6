"""The perplexity cells' comparison: each baseline cell against the candidate's of the same key, paired over
documents (the rules in the package docstring: Δ bits per clean byte, the word-PPL increase and its ratio)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robustbench_bytes import results as results_io
from robustbench_bytes import stats
from robustbench_bytes.errors import NotComparable
from robustbench_bytes.formatting import format_ratio, format_signed
from robustbench_bytes.gate.outputs import markdown, pair_records, signed_ppl
from robustbench_bytes.gate.rules import Thresholds, model_key, pair_by_model
from robustbench_bytes.gate.stored import check_failed_cell_name, check_types, refuse, stored_problem
from robustbench_bytes.gate.verdict import Verdicts
from robustbench_bytes.results import metrics, resampled
from robustbench_bytes.results.schema import CLEAN, CellResult, metric_value


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


def _documents(run_dir: Path, result: CellResult, side: str) -> resampled.DocumentArrays:
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
    return resampled.DocumentArrays.from_documents(sorted(record.documents, key=lambda d: d.index))


def _check_aligned(a: resampled.DocumentArrays, b: resampled.DocumentArrays, what: str) -> None:
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
    gives an empty comparison; the task gate (tasks.compare_task_runs) then decides."""
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
        raise NotComparable(f"the runs scored different corpora: baseline "
                            f"{_describe_corpora(base_results, base_manifest)}, candidate "
                            f"{_describe_corpora(cand_results, cand_manifest)}")

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
        self.cache: dict[tuple[str, str], resampled.DocumentArrays] = {}

    def verify(self, side: str, result: CellResult) -> None:
        if result.ok:
            self.documents(side, result)
        else:
            check_failed_cell_name(result, side, self.dirs[side])

    def documents(self, side: str, result: CellResult) -> resampled.DocumentArrays:
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

    pair.delta_bpcb = interval(resampled.change(metrics.PRIMARY, c_docs, b_docs))
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
        pair.reasons.append(f"word-PPL increase {signed_ppl(pair.candidate_increase_ci.estimate)} where the "
                            f"baseline's is {signed_ppl(pair.baseline_increase)} (interval low "
                            f"{signed_ppl(pair.candidate_increase_ci.low)} > 0)")
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
        return (*values, interval(resampled.change(spec.name, c_docs, b_docs)))


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
    base_inc = resampled.change("word_perplexity", b_docs, bc_docs)
    cand_inc = resampled.change("word_perplexity", c_docs, cc_docs)
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
