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

Where each part lives: rules (thresholds, exit codes, the pairing key), stored (what is checked before anything
is compared), cells (the perplexity cells' comparison), tasks (the task cells', its rule in its docstring),
outputs (Markdown, JSON and JUnit), verdict (each comparison's verdicts and the whole gate, Gate, that
`robustbench compare` runs). This module is the package's public face: it names what callers import, no logic.
"""

from robustbench_bytes.gate.cells import Comparison, PairResult, compare_runs
from robustbench_bytes.gate.outputs import (GATE_FORMAT, gate_document, junit_xml, refused_markdown,
                                            write_outputs)
from robustbench_bytes.gate.rules import (NOT_COMPARABLE, REGRESSED, Thresholds, combined_exit_code,
                                          gate_exit_code, model_key, pair_by_model)
from robustbench_bytes.gate.tasks import TaskComparison, TaskPair, compare_task_runs
from robustbench_bytes.gate.verdict import Gate

__all__ = ["Comparison", "GATE_FORMAT", "Gate", "NOT_COMPARABLE", "PairResult", "REGRESSED", "TaskComparison",
           "TaskPair", "Thresholds", "combined_exit_code", "compare_runs", "compare_task_runs", "gate_document",
           "gate_exit_code", "junit_xml", "model_key", "pair_by_model", "refused_markdown", "write_outputs"]
