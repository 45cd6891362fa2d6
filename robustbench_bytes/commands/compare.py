"""`robustbench compare`: the CI gate between a baseline run and a candidate run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click


@click.command("compare")
@click.argument("baseline", type=click.Path(path_type=Path))
@click.argument("candidate", type=click.Path(path_type=Path))
@click.option("--max-bpb-increase", type=float, default=0.01, show_default=True,
              help="Largest allowed rise in bits per clean byte (candidate - baseline) per cell.")
@click.option("--max-ppl-increase-ratio", type=click.FloatRange(min=0, min_open=True), default=None, metavar="R",
              help="Largest allowed ratio of the candidate's word-PPL increase over clean to the baseline's "
                   "(noisy cells). Not checked unless given.")
@click.option("--confidence", type=float, default=0.95, show_default=True,
              help="Level of the paired bootstrap intervals; a regression needs the whole interval past the threshold.")
@click.option("--replicates", type=click.IntRange(min=10), default=1000, show_default=True,
              help="Bootstrap replicates.")
@click.option("--max-acc-drop", type=click.FloatRange(0, 1), default=0.02, show_default=True,
              help="Task cells: largest allowed fall in multiple-choice accuracy (baseline - candidate); a "
                   "regression needs the paired interval wholly past it.")
@click.option("--allow-missing", is_flag=True,
              help="Pass even when baseline cells are missing from the candidate or failed in the baseline "
                   "(they are listed as not compared). Without it such a gap fails the gate with exit 2.")
def compare(baseline, candidate, max_bpb_increase, max_ppl_increase_ratio, confidence, replicates, max_acc_drop,
            allow_missing):
    """Gate CANDIDATE against BASELINE (two run directories). Exit 0 when every baseline cell was compared
    and none regressed, 1 on a regression, 2 when the runs cannot be compared or a baseline cell could not
    be checked. A Markdown summary goes to stdout and, when $GITHUB_STEP_SUMMARY is set, is appended to
    that file."""
    from robustbench_bytes.compare import Thresholds, combined_exit_code, compare_runs, markdown
    from robustbench_bytes.errors import NotComparable

    thresholds = Thresholds(max_bpb_increase=max_bpb_increase, max_ppl_increase_ratio=max_ppl_increase_ratio,
                            confidence=confidence, replicates=replicates, allow_missing=allow_missing)
    try:
        comparison = compare_runs(baseline, candidate, thresholds)
    except NotComparable as e:
        _step_summary(f"## robustbench compare\n\n**Cannot compare:** {e}\n")
        raise
    from robustbench_bytes import compare_tasks

    tasks = compare_tasks.compare_task_runs(baseline, candidate, max_acc_drop=max_acc_drop, confidence=confidence,
                                            replicates=replicates, allow_missing=allow_missing)
    text = markdown(comparison) + compare_tasks.markdown(tasks)
    click.echo(text, nl=False)
    _step_summary(text)
    sys.exit(combined_exit_code(comparison.exit_code, tasks.exit_code))


def _step_summary(text: str) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(text + "\n")
        except OSError as e:  # the verdict (exit code) matters more than the summary page
            click.echo(f"warning: cannot append to $GITHUB_STEP_SUMMARY {path}: {e.strerror}", err=True)
