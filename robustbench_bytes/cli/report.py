"""`robustbench report`: a leaderboard and paper-style tables (Markdown, HTML, CSV, LaTeX) and plots from run
directories."""

from __future__ import annotations

from pathlib import Path

import click

from robustbench_bytes.stats import DEFAULT_REPLICATES, MAX_REPLICATES


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="RUN_DIR...")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default="report",
              show_default=True, help="Folder for README.md, report.html, report.csv, documents.csv, report.tex and "
              "plots/: a new or empty folder, or one a report was written to (it holds report.json).")
@click.option("--confidence", type=float, default=0.95,
              show_default=True, help="Level of the bootstrap intervals over documents.")
@click.option("--replicates", type=click.IntRange(min=10, max=MAX_REPLICATES), default=DEFAULT_REPLICATES,
              show_default=True, help=f"Bootstrap replicates (10 to {MAX_REPLICATES:,}).")
@click.option("--no-plots", is_flag=True, help="Write the tables only.")
def report(run_dirs, out_dir, confidence, replicates, no_plots):
    """Write the robustness report of one or more runs (perplexity cells, task cells or both): a
    leaderboard ranked by performance on noised text (mean bits per clean byte over the noises; for
    tasks, mean noised accuracy) beside the clean score and the rise or drop, absolute and relative;
    what each noise does to a line of the text; per model and noise bits per clean byte and its rise,
    bits per byte, word-PPL and its increase, with bootstrap intervals over documents; accuracy; bits
    per byte by position; plots as PNG and SVG; the same as one offline page, report.html."""
    from robustbench_bytes.report import ReportOptions, write_report

    if not out_dir.strip():
        raise click.BadParameter("expected a folder path", param_hint="'-o' / '--out'")
    out_dir = Path(out_dir)
    written = write_report(list(run_dirs), out_dir, ReportOptions(confidence=confidence, replicates=replicates),
                           plots=not no_plots)
    for key in ("readme", "html", "csv", "documents", "latex"):
        if key in written:
            click.echo(f"wrote {written[key]}")
    for path in written["plots"]:
        click.echo(f"wrote {path}")
    if written.get("warning"):
        click.echo(written["warning"], err=True)
