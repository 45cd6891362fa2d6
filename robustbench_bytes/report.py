"""`robustbench report`'s output folder: README.md, report.html, report.csv, documents.csv, report.tex and plots/
from run directories (perplexity cells, task cells, or both)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from robustbench_bytes import results as results_io
from robustbench_bytes.errors import BadInput
from robustbench_bytes.files import atomic_path, write_text_atomic
from robustbench_bytes.report_html import markdown_to_html
from robustbench_bytes.report_length import length_section
from robustbench_bytes.report_plots import PLOT_TITLES, caption, report_plots
from robustbench_bytes.report_table import (CSV_COLUMNS, MIN_DOCUMENTS, ReportOptions, build_table,
                                            few_documents_warning)
from robustbench_bytes.report_text import (latex_tables, markdown_bits_table, markdown_increase_table,
                                           markdown_leaderboard, markdown_least_loss, markdown_model_table,
                                           markdown_undefined_notes, text_summary)

__all__ = ["ReportOptions", "build_table", "summary_text", "write_report"]

DOCUMENT_COLUMNS = ["label", "model", "run", "noise", "seed", "document", "id", "nll", "tokens", "bytes",
                    "clean_bytes", "clean_words", "bits_per_byte", "bits_per_clean_byte"]


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


def write_documents_csv(table, path: Path) -> Path:
    """documents.csv: one row per cell (model x noise x seed) x document, with its NLL, sizes and bits."""
    ln2 = math.log(2)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(DOCUMENT_COLUMNS)
        labels = {(r["run"], r["model"]): r["label"] for _, r in table.iterrows()}
        for run in dict.fromkeys(table["run"]):
            for result in results_io.read_results(run):
                if not result.ok:
                    continue
                try:
                    documents = results_io.read_documents(run, result)
                except BadInput:
                    continue  # the report's tables say that this cell has no intervals
                label = labels.get((run, result.model), result.model)
                for d in documents:
                    out.writerow([label, result.model, run, result.noise, result.seed, d.index, d.id, repr(d.nll),
                                  d.tokens, d.bytes, d.clean_bytes, d.clean_words,
                                  repr(d.nll / (d.bytes * ln2)) if d.bytes else "",
                                  repr(d.nll / (d.clean_bytes * ln2)) if d.clean_bytes else ""])
    return path


def _perplexity_markdown(table, options: ReportOptions, plots: list[Path]) -> list[str]:
    pct = f"{options.confidence:.0%}"
    md = ["## Leaderboard", "",
          "One number per model: the **mean rise in bits per clean byte** over the noises of the run (each noise's "
          "bits per clean byte minus the clean text's; lower is more robust; this is what `robustbench compare` "
          f"gates on), with its {pct} paired bootstrap interval, next to the model's clean bits per byte.", "",
          markdown_leaderboard(table.attrs["leaderboard"]), ""]
    warning = few_documents_warning(table)
    if warning:
        md += [f"**{warning[0].upper()}{warning[1:]}**", ""]
    md += ["**bits/clean byte** = NLL / (bytes of the clean text · ln 2), the same unit for every noise; **rise "
           "over clean** = noisy minus clean bits per clean byte; **bits/byte** = NLL / (bytes of the noised text · "
           "ln 2); **word-PPL** = exp(NLL / words of the clean text) (MambaByte's convention); **word-PPL "
           f"increase** = noisy word-PPL − clean word-PPL (the paper's measure). Brackets: {pct} bootstrap "
           f"intervals over documents ({options.replicates} replicates; changes resample the same documents for the "
           f"clean and the noisy text); n/a: fewer than {MIN_DOCUMENTS} documents, no interval. Several seeds: "
           "their mean.", "",
           "## Which model loses least under each noise", "",
           "By each measure, the model with the smallest change from its own clean score; \"intervals overlap\" "
           "means its interval does not clear every other model's, so the order is not resolved.", "",
           markdown_least_loss(table), "",
           "## Rise in bits per clean byte over clean text", "", markdown_bits_table(table), "",
           "## Word-perplexity increase over clean text", "", markdown_increase_table(table), ""]
    notes = markdown_undefined_notes(table)
    if notes:
        md += [notes, ""]
    for label, rows in table.groupby("label", sort=False):
        first = rows.iloc[0]
        kind = ", ".join(str(x) for x in (first["level"], first["architecture"]) if isinstance(x, str))
        md += [f"## {label}" + (f" ({kind})" if kind else ""), "", f"Corpus: {first['corpus']}, "
               f"{first['documents']} documents, {int(first['clean_bytes']):,} clean bytes.", "",
               markdown_model_table(rows), ""]
    if plots:
        md += ["## Plots", "", "Each plot's caption names its data: "
               + caption(table, options.confidence, options.replicates), ""]
        for path in plots:
            if path.suffix == ".png":
                title = PLOT_TITLES.get(path.stem, path.stem)
                md += [f"### {title}", "", f"![{title}](plots/{path.name}) ([SVG](plots/{path.stem}.svg))", ""]
    return md


def write_report(run_dirs: list[Path | str], out_dir: Path | str, options: ReportOptions = ReportOptions(),
                 plots: bool = True) -> dict:
    """Write the report into out_dir; return what was written. BadInput when the runs hold nothing to report."""
    from robustbench_bytes.report_tasks import write_task_report

    out_dir = Path(out_dir)
    table = build_table(run_dirs, options)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots_dir = out_dir / "plots"
    if plots:
        plots_dir.mkdir(exist_ok=True)
    written_plots = report_plots(table, plots_dir, options.confidence, options.replicates) if plots else []

    length = length_section(run_dirs, out_dir, options.confidence, options.replicates, options.seed, plots)
    tasks_md = write_task_report(run_dirs, out_dir, options, plots=plots)
    if table.empty and not tasks_md and not length.markdown:
        raise BadInput(f"{', '.join(map(str, run_dirs))}: no results to report (no perplexity or task cells)")

    files = {}
    md = ["# Robustness report", "", "How much each character noise hurts each model.", "",
          "Runs: " + "; ".join(_run_description(Path(d)) for d in run_dirs) + ".", ""]
    if not table.empty:
        files["csv"] = out_dir / "report.csv"
        with atomic_path(files["csv"]) as tmp:
            table.reindex(columns=CSV_COLUMNS).to_csv(tmp, index=False)  # full precision: repr of each float
        files["documents"] = write_documents_csv(table, out_dir / "documents.csv")
        files["latex"] = out_dir / "report.tex"
        write_text_atomic(files["latex"], latex_tables(table, options.confidence))
        md += _perplexity_markdown(table, options, written_plots)
    md += length.markdown + tasks_md
    listed = {"csv": "every number of the tables with its interval, one row per model and noise",
              "documents": "one row per cell and document: NLL, bytes, words", "latex": "LaTeX tables, needs booktabs"}
    md += ["Files: " + ", ".join(f"[{p.name}]({p.name}) ({listed[k]})" for k, p in files.items())
           + (", " if files else "") + "[report.html](report.html) (this report as one offline page).", ""]
    readme = out_dir / "README.md"
    text = "\n".join(md)
    write_text_atomic(readme, text)
    html_path = out_dir / "report.html"
    write_text_atomic(html_path, markdown_to_html(text, out_dir))
    return {"table": table, "readme": readme, "html": html_path, **files,
            "plots": written_plots + [f for f in length.files if f.parent.name == "plots"],
            "warning": few_documents_warning(table)}


def summary_text(run_dir: Path | str, options: ReportOptions = ReportOptions()) -> str:
    """`robustbench run`'s terminal summary: the report's leaderboard and table for one run directory."""
    table = build_table([run_dir], options)
    text = text_summary(table, options.confidence)
    warning = few_documents_warning(table)
    return text + (f"\n\n{warning}" if warning else "")

