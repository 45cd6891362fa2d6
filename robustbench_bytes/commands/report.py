"""`robustbench report`: paper-style tables (Markdown, CSV, LaTeX) and plots from run directories."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="RUN_DIR...")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default="report",
              show_default=True, help="Folder for README.md, report.csv, report.tex and plots/.")
@click.option("--confidence", type=float, default=0.95,
              show_default=True, help="Level of the bootstrap intervals over documents.")
@click.option("--replicates", type=click.IntRange(min=10), default=1000, show_default=True,
              help="Bootstrap replicates.")
@click.option("--no-plots", is_flag=True, help="Write the tables only.")
def report(run_dirs, out_dir, confidence, replicates, no_plots):
    """Write the robustness report of one or more runs: per model, word-PPL per noise and its
    increase over clean, bits per byte and bits per clean byte, with bootstrap intervals; plots
    as PNG and SVG."""
    from robustbench_bytes.report import ReportOptions, write_report

    if not out_dir.strip():
        raise click.BadParameter("expected a folder path", param_hint="'-o' / '--out'")
    out_dir = Path(out_dir)
    written = write_report(list(run_dirs), out_dir, ReportOptions(confidence=confidence, replicates=replicates),
                           plots=not no_plots)
    click.echo(f"wrote {written['readme']}, {written['csv']}, {written['latex']}")
    for path in written["plots"]:
        click.echo(f"wrote {path}")
