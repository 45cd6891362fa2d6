"""`robustbench report`'s output folder: README.md, report.csv, report.tex and plots/ from run directories."""

from __future__ import annotations

from pathlib import Path

from robustbench_bytes import results as results_io
from robustbench_bytes.files import atomic_path, write_text_atomic
from robustbench_bytes.report_length import length_section
from robustbench_bytes.report_plots import plot_bits_vs_p, plot_clean_vs_noisy, plot_increase
from robustbench_bytes.report_table import CSV_COLUMNS, ReportOptions, build_table
from robustbench_bytes.report_text import (latex_tables, markdown_bits_table, markdown_increase_table,
                                           markdown_model_table, markdown_undefined_notes)

__all__ = ["ReportOptions", "build_table", "write_report"]


def _run_description(run_dir: Path) -> str:
    manifest = results_io.read_manifest(run_dir)
    corpus = manifest.get("corpus") or {}
    bits = [f"`{run_dir}`"]
    if corpus:
        bits.append(f"corpus **{corpus.get('name')}** ({corpus.get('documents')} documents, "
                    f"{corpus.get('bytes', 0):,} bytes, sha256 {str(corpus.get('sha256'))[:12]})")
    if manifest.get("seeds"):
        bits.append(f"noise seeds {', '.join(map(str, manifest['seeds']))}")
    if manifest.get("scoring_version"):
        bits.append(f"scoring version {manifest['scoring_version']}")
    if manifest.get("device"):
        bits.append(f"device {manifest['device']}")
    package = manifest.get("package") or {}
    if package.get("version"):
        bits.append(f"robustbench-bytes {package['version']}" + (f" (git {package['git'][:12]})"
                                                                  if package.get("git") else ""))
    return ", ".join(bits)


def write_report(run_dirs: list[Path | str], out_dir: Path | str, options: ReportOptions = ReportOptions(),
                 plots: bool = True) -> dict:
    """Write README.md, report.csv, report.tex and plots/ into out_dir; return what was written."""
    out_dir = Path(out_dir)
    draw = plots  # `plots` is reused below for the list of plot files
    table = build_table(run_dirs, options)
    out_dir.mkdir(parents=True, exist_ok=True)
    written_plots: list[Path] = []
    if plots:
        plots_dir = out_dir / "plots"
        plots_dir.mkdir(exist_ok=True)
        c = options.confidence
        written_plots = (plot_increase(table, plots_dir, c) + plot_bits_vs_p(table, plots_dir, c)
                         + plot_clean_vs_noisy(table, plots_dir, c))
    plots = written_plots

    csv_path = out_dir / "report.csv"
    with atomic_path(csv_path) as tmp:
        table.reindex(columns=CSV_COLUMNS).to_csv(tmp, index=False)  # full precision: repr of each float
    tex_path = out_dir / "report.tex"
    write_text_atomic(tex_path, latex_tables(table, options.confidence))

    pct = f"{options.confidence:.0%}"
    md = ["# Robustness report", "",
          "How much each character noise hurts each model. **word-PPL** = exp(NLL / words of the clean text) "
          "(MambaByte's convention); **increase** = noisy word-PPL − clean word-PPL; **bits/byte** = NLL / "
          "(bytes of the noised text · ln 2); **bits/clean byte** = NLL / (bytes of the clean text · ln 2). "
          f"Brackets: {pct} bootstrap intervals over documents ({options.replicates} replicates; the increase "
          "resamples the same documents for the clean and the noisy text). Several seeds: their mean.", "",
          "Runs: " + "; ".join(_run_description(Path(d)) for d in run_dirs) + ".", "",
          "## Word-perplexity increase over clean text", "", markdown_increase_table(table), "",
          "## Bits per clean byte (rise over clean text)", "", markdown_bits_table(table), ""]
    notes = markdown_undefined_notes(table)
    if notes:
        md += [notes, ""]
    for label, rows in table.groupby("label", sort=False):
        first = rows.iloc[0]
        kind = ", ".join(str(x) for x in (first["level"], first["architecture"]) if isinstance(x, str))
        md += [f"## {label}" + (f" ({kind})" if kind else ""), "", f"Corpus: {first['corpus']}, "
               f"{first['documents']} documents.", "", markdown_model_table(rows), ""]
    if plots:
        md += ["## Plots", ""]
        titles = {"ppl_increase": "Word-perplexity increase per noise and model",
                  "bits_vs_p": "Bits per clean byte against the noise probability p",
                  "clean_vs_noisy": "Clean against noisy bits per clean byte"}
        for path in plots:
            if path.suffix == ".png":
                md += [f"### {titles.get(path.stem, path.stem)}", "",
                       f"![{titles.get(path.stem, path.stem)}](plots/{path.name}) "
                       f"([SVG](plots/{path.stem}.svg))", ""]
    length = length_section(run_dirs, out_dir, options.confidence, options.replicates, options.seed, draw)
    md += length.markdown
    from robustbench_bytes.report_tasks import write_task_report

    md += write_task_report(run_dirs, out_dir, options, plots=(out_dir / "plots").is_dir())
    md += ["Files: [report.csv](report.csv) (every number with its interval), "
           "[report.tex](report.tex) (LaTeX tables, needs booktabs).", ""]
    readme = out_dir / "README.md"
    write_text_atomic(readme, "\n".join(md))
    return {"table": table, "readme": readme, "csv": csv_path, "latex": tex_path,
            "plots": plots + [f for f in length.files if f.parent.name == "plots"]}
