"""`robustbench compare`: the CI gate between a baseline run and a candidate run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from robustbench_bytes.stats import DEFAULT_REPLICATES, MAX_REPLICATES


@click.command("compare")
@click.argument("baseline", type=click.Path(path_type=Path))
@click.argument("candidate", type=click.Path(path_type=Path))
@click.option("--max-bpb-increase", type=float, default=0.01, show_default=True,
              help="Largest allowed rise in bits per clean byte (candidate - baseline) per cell.")
@click.option("--max-ppl-increase-ratio", type=click.FloatRange(min=0, min_open=True), default=None, metavar="R",
              help="Largest allowed ratio of the candidate's word-PPL increase over clean to the baseline's "
                   "(noisy cells). Not checked unless given; where it cannot be checked (an undefined word-PPL) "
                   "the cell is not compared (exit 2 unless --allow-missing).")
@click.option("--confidence", type=float, default=0.95, show_default=True,
              help="Level of the paired bootstrap intervals; a regression needs the whole interval past the threshold.")
@click.option("--replicates", type=click.IntRange(min=10, max=MAX_REPLICATES), default=DEFAULT_REPLICATES,
              show_default=True, help=f"Bootstrap replicates (10 to {MAX_REPLICATES:,}).")
@click.option("--max-acc-drop", type=click.FloatRange(0, 1), default=0.02, show_default=True,
              help="Task cells: largest allowed fall in multiple-choice accuracy (baseline - candidate); a "
                   "regression needs the paired interval wholly past it.")
@click.option("--allow-missing", is_flag=True,
              help="Pass even when baseline cells are missing from the candidate, failed in the baseline or could "
                   "not be checked (they are listed as not compared). Without it such a gap fails the gate with "
                   "exit 2.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Also write the verdicts as JSON: every pair (key, both values, delta with its interval, "
                   "threshold, verdict) and the exit code with its reason.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE", help="Also write the verdicts as JUnit XML: one testcase per pair, a failure per "
                                   "regression (with its delta and interval).")
def compare(baseline, candidate, max_bpb_increase, max_ppl_increase_ratio, confidence, replicates, max_acc_drop,
            allow_missing, json_path, junit_path):
    """Gate CANDIDATE against BASELINE (two run directories): their perplexity cells and their task cells. Exit 0
    when every baseline cell was compared and none regressed, 1 on a regression, 2 when the runs cannot be
    compared or a baseline cell could not be checked. A Markdown summary goes to stdout and, when
    $GITHUB_STEP_SUMMARY is set, is appended to that file; --json and --junit write the same verdicts for CI
    systems (also when the runs cannot be compared)."""
    from robustbench_bytes.gate import (NOT_COMPARABLE, Gate, Thresholds, compare_runs, compare_task_runs,
                                        gate_document, refused_markdown, write_outputs)
    from robustbench_bytes.errors import BadInput

    thresholds = Thresholds(max_bpb_increase=max_bpb_increase, max_ppl_increase_ratio=max_ppl_increase_ratio,
                            confidence=confidence, replicates=replicates, allow_missing=allow_missing,
                            max_acc_drop=max_acc_drop)
    try:
        gate = Gate(baseline, candidate, thresholds, [compare_runs(baseline, candidate, thresholds),
                                                     compare_task_runs(baseline, candidate, thresholds)])
    except BadInput as e:  # NotComparable included: the outputs say why too
        _step_summary(refused_markdown(str(e)))
        write_outputs(gate_document(baseline, candidate, thresholds, [], NOT_COMPARABLE, str(e)), json_path,
                      junit_path)
        raise
    text = gate.markdown()
    write_outputs(gate.document(), json_path, junit_path)
    click.echo(text, nl=False)
    _step_summary(text)
    sys.exit(gate.exit_code)


def _step_summary(text: str) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(text + "\n")
        except OSError as e:  # the verdict (exit code) matters more than the summary page
            click.echo(f"warning: cannot append to $GITHUB_STEP_SUMMARY {path}: {e.strerror}", err=True)
