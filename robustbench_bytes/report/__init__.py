"""`robustbench report`'s output folder: README.md, report.html, report.csv, documents.csv, report.tex and plots/
from run directories (perplexity cells, task cells, or both)."""

from __future__ import annotations

import csv
from pathlib import Path

import json

from robustbench_bytes.results import metrics
from robustbench_bytes import results as results_io
from robustbench_bytes.results import tasks_io
from robustbench_bytes.errors import BadInput
from robustbench_bytes.files import atomic_path, check_output_dir, read_json, write_text_atomic
from robustbench_bytes.report.html import heading_ids, headings, markdown_to_html
from robustbench_bytes.report.length import length_section
from robustbench_bytes.report.plots import PLOT_TITLES, caption, report_plots
from robustbench_bytes.report.options import MIN_DOCUMENTS, ReportOptions
from robustbench_bytes.report.table import (build_table, build_tables, csv_columns, few_documents_warning,
                                            perplexity_results)
from robustbench_bytes.report.text import (latex_tables, leaderboard_notes, markdown_bits_table,
                                           markdown_increase_table, markdown_leaderboard, markdown_least_loss,
                                           markdown_model_table, markdown_undefined_notes, text_summary)
from robustbench_bytes.report.lm_eval_summary import read_lm_eval_cells
from robustbench_bytes.results.schema import CLEAN

__all__ = ["ReportOptions", "build_table", "build_tables", "check_report_out_dir", "summary_text", "write_report"]

REPORT_MANIFEST = "report.json"  # what a report folder holds; marks a folder `robustbench report` wrote
REPORT_FORMAT = "robustbench-report/1"
REPORT_TITLE = "# Robustness report"

DOCUMENT_SUMS = ["nll", "tokens", "bytes", "clean_bytes", "clean_words"]


def document_columns() -> list[str]:
    """documents.csv's columns: the cell, the document, its sums, then its value of each metric of the metric table
    that has a per-document column (metrics.document_specs)."""
    return (["label", "model", "run", "noise", "seed", "document", "id"] + DOCUMENT_SUMS
            + [spec.name for spec in metrics.document_specs()])


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
    if package.get("version"):  # no git hash: a resumed run records the current one, which would change the report
        bits.append(f"robustbench-bytes {package['version']}")
    return ", ".join(bits)


def write_documents_csv(table, path: Path) -> Path:
    """documents.csv: one row per cell (model x noise x seed) x document, with its NLL, sizes and bits."""
    specs = metrics.document_specs()
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(document_columns())
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
                    sums = {name: getattr(d, name) for name in DOCUMENT_SUMS}
                    values = [spec.defined(sums)[0] for spec in specs]
                    out.writerow([label, result.model, run, result.noise, result.seed, d.index, d.id]
                                 + [repr(v) if isinstance(v, float) else v for v in sums.values()]
                                 + ["" if v is None else repr(v) for v in values])
    return path


def check_report_out_dir(out_dir: Path) -> None:
    """The report writes only into a missing or empty folder, or one a report was written to (its report.json,
    or, from before report.json, its README.md titled as a report beside report.html): `-o .` must not replace
    a project's README.md. The rule of every output folder (files.check_output_dir); BadInput otherwise."""
    check_output_dir(out_dir, _is_report_folder, f"a report folder (no {REPORT_MANIFEST})")


def _is_report_folder(out_dir: Path) -> bool:
    if (out_dir / REPORT_MANIFEST).is_file():
        try:
            return (read_json(out_dir / REPORT_MANIFEST) or {}).get("format") == REPORT_FORMAT
        except (BadInput, AttributeError):
            return False
    readme = out_dir / "README.md"
    if readme.is_file() and (out_dir / "report.html").is_file():
        with open(readme, encoding="utf-8", errors="replace") as f:
            return f.readline().rstrip("\n") == REPORT_TITLE
    return False


def _previous_files(out_dir: Path) -> list[str]:
    """The files the previous report in out_dir listed (relative paths inside out_dir), [] without one."""
    path = out_dir / REPORT_MANIFEST
    if not path.is_file():
        return []
    listed = (read_json(path) or {}).get("files") or []
    return [f for f in listed if isinstance(f, str) and ".." not in Path(f).parts and not Path(f).is_absolute()]


def _write_manifest(out_dir: Path, run_dirs, written: list[Path]) -> Path:
    """report.json: the runs and every file of this report, nothing that changes between two reports of the same
    runs (no dates); files a previous report listed and this one did not write are removed."""
    names = sorted({str(p.relative_to(out_dir)) for p in written} | {REPORT_MANIFEST})
    for stale in sorted(set(_previous_files(out_dir)) - set(names)):
        (out_dir / stale).unlink(missing_ok=True)
    path = out_dir / REPORT_MANIFEST
    write_text_atomic(path, json.dumps({"format": REPORT_FORMAT, "runs": [str(d) for d in run_dirs],
                                        "files": names}, indent=1) + "\n")
    return path


def _contents(md: list[str]) -> list[str]:
    """A table of contents of the level-2 headings, linked by the ids GitHub and report.html give them."""
    found = headings(md)
    ids = heading_ids([text for _, text in found])
    return ["Contents: " + " · ".join(f"[{text.replace('`', '')}](#{i})" for (level, text), i in zip(found, ids)
                                      if level == 2), ""]


def _leaderboard_markdown(board, options: ReportOptions) -> list[str]:
    return ["### Perplexity", "",
            "Ranked by the **mean bits per clean byte on noised text** over the noises (lower is better; per byte of "
            "the clean text, so every noise has the same unit), beside the clean score, the **rise** (noised − clean) "
            f"and the **relative rise** (rise / clean). Brackets: {options.confidence:.0%} paired bootstrap intervals "
            "over documents. (`robustbench compare` gates something else: each cell's change between two runs.)", "",
            markdown_leaderboard(board), "", *[f"- {n}" for n in leaderboard_notes(board)], ""]


def _noise_examples(run_dirs: list[Path]) -> list[str]:
    """One short clean line of the runs' text and its noised version per noise (robustbench_bytes.noise's apply
    with the run's seed), so that a reader sees what each noise does."""
    from robustbench_bytes import noise

    cells = [c for d in run_dirs for c in perplexity_results(d)] + \
            [c for d in run_dirs for c in tasks_io.read_task_results(d) + read_lm_eval_cells(d)]
    noises = list(dict.fromkeys(c.noise for c in cells if c.noise != CLEAN))
    if not noises:
        return []
    seed = next(c.seed for c in cells if c.noise != CLEAN)
    md = ["## What each noise does", ""]
    found = _example_line(cells)
    if found is None:
        return md + ["No example: the runs' corpus and tasks cannot be read here.", ""]
    line, where = found
    width = max(len(n) for n in [CLEAN] + noises)
    shown = [f"{CLEAN.ljust(width)}  {line}"]
    for spec in noises:
        noised = noise.apply(line, spec, seed=seed).replace("\n", "\u23ce").replace("\r", "\u240d")
        shown.append(f"{spec.ljust(width)}  {noised}")
    return md + [f"A line of {where}, noised on its own with the run's seed ({seed}); the scored documents were "
                 "noised whole, so their draws differ.", "", "```", *shown, "```", ""]


def _example_line(cells) -> tuple[str, str] | None:
    """A short line with lower-case letters and spaces from the first cell's corpus, else from a task's first
    items: (line, where it comes from); None when neither can be read here."""
    from robustbench_bytes.data import load_corpus

    texts, where = [], ""
    corpus = next((c.corpus for c in cells if getattr(c, "corpus", None)), None)
    if corpus:
        try:
            texts, where = load_corpus(corpus).documents, f"the corpus {corpus}"
        except (BadInput, OSError):
            texts = []
    if not texts:
        from robustbench_bytes.tasks import resolve_task

        spec = next((c.task_spec or c.task for c in cells if hasattr(c, "task_spec")), None)
        try:
            texts = [item.context for item in resolve_task(spec).items[:50]] if spec else []
            where = f"the task {spec}"
        except (BadInput, OSError):
            return None
    lines = [x.strip() for text in texts for x in text.splitlines()]
    good = [x for x in lines if 30 <= len(x) <= 60 and " " in x and any(ch.islower() for ch in x)
            and "\t" not in x and "```" not in x]
    if good:
        return good[0], where
    fallback = next((x for x in lines if x), None)
    return (fallback[:60], where) if fallback else None


def _perplexity_markdown(table, options: ReportOptions, plots: list[Path]) -> list[str]:
    """The perplexity sections after the leaderboard: the rise table, the plots, who loses least, the word-PPL
    increase, then one table per model."""
    pct = f"{options.confidence:.0%}"
    md = ["## Bits per clean byte under each noise", ""]
    warning = few_documents_warning(table)
    if warning:
        md += [f"**{warning[0].upper()}{warning[1:]}**", ""]
    md += ["**bits/clean byte** = NLL / (bytes of the clean text · ln 2), the same unit for every noise; **rise "
           "over clean** = noisy minus clean bits per clean byte; **bits/byte** = NLL / (bytes of the noised text · "
           "ln 2); **word-PPL** = exp(NLL / words of the clean text) (MambaByte's convention); **word-PPL "
           f"increase** = noisy word-PPL − clean word-PPL (the paper's measure). Brackets: {pct} bootstrap "
           f"intervals over documents ({options.replicates} replicates; changes resample the same documents for the "
           f"clean and the noisy text); n/a: fewer than {MIN_DOCUMENTS} documents, no interval. Several seeds: "
           "their mean. Each cell: bits per clean byte (rise over clean [interval]).", "",
           markdown_bits_table(table), ""]
    if plots:
        md += ["## Plots", "", "Each plot's caption names its data: "
               + caption(table, options.confidence, options.replicates), ""]
        for path in plots:
            if path.suffix == ".png":
                title = PLOT_TITLES.get(path.stem, path.stem)
                md += [f"### {title}", "", f"![{title}](plots/{path.name}) ([SVG](plots/{path.stem}.svg))", ""]
    md += ["## Which model loses least under each noise", "",
           "By each measure, the model with the smallest change from its own clean score; \"intervals overlap\" "
           "means its interval does not clear every other model's, so the order is not resolved. A model that is "
           "weak on clean text can lose little: read this beside the leaderboard.", "",
           markdown_least_loss(table), "",
           "## Word-perplexity increase over clean text", "", markdown_increase_table(table), ""]
    notes = markdown_undefined_notes(table)
    if notes:
        md += [notes, ""]
    md += ["## Per model", ""]
    for label, rows in table.groupby("label", sort=False):
        first = rows.iloc[0]
        kind = ", ".join(str(x) for x in (first["level"], first["architecture"]) if isinstance(x, str))
        md += [f"### {label}" + (f" ({kind})" if kind else ""), "", f"Corpus: {first['corpus']}, "
               f"{first['documents']} documents, {int(first['clean_bytes']):,} clean bytes.", "",
               markdown_model_table(rows), ""]
    return md


def write_report(run_dirs: list[Path | str], out_dir: Path | str, options: ReportOptions = ReportOptions(),
                 plots: bool = True) -> dict:
    """Write the report into out_dir; return what was written. BadInput when the runs hold nothing to report or
    out_dir holds files no report wrote."""
    from robustbench_bytes.report.tasks import write_task_report

    out_dir = Path(out_dir)
    table, board = build_tables(run_dirs, options)
    run_dirs = [results_io.check_run_dir(d) for d in run_dirs]
    check_report_out_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots_dir = out_dir / "plots"
    if plots:
        plots_dir.mkdir(exist_ok=True)
    written_plots = report_plots(table, plots_dir, options.confidence, options.replicates) if plots else []

    length = length_section(run_dirs, out_dir, options.confidence, options.replicates, options.seed, plots)
    tasks = write_task_report(run_dirs, out_dir, options, plots=plots, leaderboards_inside=not table.empty)
    if table.empty and not tasks.markdown and not length.markdown:
        raise BadInput(f"{', '.join(map(str, run_dirs))}: no results to report (no perplexity or task cells)")

    files = {}
    # the first screen: the perplexity leaderboard and the noise examples; the task leaderboards open the accuracy
    # section (or make the leaderboard of a run with task cells only)
    boards = _leaderboard_markdown(board, options) if not table.empty else tasks.leaderboard
    body = (["## Leaderboard", ""] + boards if boards else []) + _noise_examples(run_dirs)
    if not table.empty:
        files["csv"] = out_dir / "report.csv"
        with atomic_path(files["csv"]) as tmp:
            table.reindex(columns=csv_columns()).to_csv(tmp, index=False)  # full precision: repr of each float
        files["documents"] = write_documents_csv(table, out_dir / "documents.csv")
        files["latex"] = out_dir / "report.tex"
        write_text_atomic(files["latex"], latex_tables(table, options.confidence))
        body += _perplexity_markdown(table, options, written_plots)
    body += tasks.markdown + length.markdown
    listed = {"csv": "every number of the tables with its interval, one row per model and noise",
              "documents": "one row per cell and document: NLL, bytes, words", "latex": "LaTeX tables, needs booktabs"}
    body += ["Files: " + ", ".join(f"[{p.name}]({p.name}) ({listed[k]})" for k, p in files.items())
             + (", " if files else "") + "[report.html](report.html) (this report as one offline page).", ""]
    md = [REPORT_TITLE, "", "How much each character noise hurts each model.", "",
          "Runs: " + "; ".join(_run_description(Path(d)) for d in run_dirs) + ".", ""] + _contents(body) + body
    readme = out_dir / "README.md"
    text = "\n".join(md)
    write_text_atomic(readme, text)
    html_path = out_dir / "report.html"
    write_text_atomic(html_path, markdown_to_html(text, out_dir))
    all_plots = written_plots + [f for f in length.files if f.parent.name == "plots"] + tasks.files
    manifest = _write_manifest(out_dir, run_dirs, [readme, html_path, *files.values(), *length.files, *tasks.files,
                                                   *all_plots])
    return {"table": table, "leaderboard": board, "task_leaderboards": tasks.boards, "readme": readme,
            "html": html_path, "manifest": manifest, **files,
            "plots": [p for p in all_plots if p.parent.name == "plots"], "warning": few_documents_warning(table)}


def summary_text(run_dir: Path | str, options: ReportOptions = ReportOptions()) -> str:
    """`robustbench run`'s terminal summary: the report's leaderboard (with the measure it ranks by and what its
    order says) and table for one run directory."""
    table, board = build_tables([run_dir], options)
    text = text_summary(table, board, options.confidence)
    warning = few_documents_warning(table)
    return text + (f"\n\n{warning}" if warning else "")
