"""Paper-style tables and plots from one or more run directories.

Point estimates are results.json's numbers (the mean over seeds when a noise has several); the
95% intervals come from a bootstrap over documents of the per-document NLLs (stats.py), with the
same document draws for the clean and the noisy cell, so the interval of an increase is paired.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from robustbench_bytes import results as results_io
from robustbench_bytes import stats
from robustbench_bytes.errors import BadInput
from robustbench_bytes.files import atomic_path, write_text_atomic
from robustbench_bytes.formatting import format_bits, format_ppl, format_value
from robustbench_bytes.result_schema import CLEAN, CellResult

METRICS = ("word_perplexity", "ppl_increase", "bits_per_byte", "bits_per_clean_byte")
METRIC_LABELS = {
    "word_perplexity": "word-PPL",
    "ppl_increase": "increase",
    "bits_per_byte": "bits/byte",
    "bits_per_clean_byte": "bits/clean byte",
}


@dataclass(frozen=True)
class ReportOptions:
    confidence: float = 0.95
    replicates: int = stats.DEFAULT_REPLICATES
    seed: int = 0

    def __post_init__(self):
        if not (0.5 <= self.confidence < 1):  # also rejects nan
            raise BadInput(f"confidence={self.confidence}: expected a number in [0.5, 1)")
        if self.replicates < 10:
            raise BadInput(f"replicates={self.replicates}: expected at least 10")


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------

def _group_label(run: str, model: str, several_runs: bool) -> str:
    return f"{model} [{Path(run).name}]" if several_runs else model


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else math.nan


def build_table(run_dirs: list[Path | str], options: ReportOptions = ReportOptions()):
    """One row per (run, model, noise), seeds pooled by their mean: estimates and intervals."""
    import pandas as pd

    run_dirs = [results_io.check_run_dir(d) for d in run_dirs]
    check_distinct_runs(run_dirs)
    several_runs = len(run_dirs) > 1
    rows = []
    for run_dir in run_dirs:
        groups: dict[str, list[CellResult]] = {}
        for r in results_io.read_results(run_dir):
            groups.setdefault(r.model_spec, []).append(r)
        for cells in groups.values():
            rows.extend(_model_rows(run_dir, cells, several_runs, options))
    if not rows:
        raise BadInput(f"{', '.join(map(str, run_dirs))}: no results to report")
    return pd.DataFrame(rows)


def check_distinct_runs(run_dirs: list[Path]) -> None:
    """The same run twice, or two runs whose folders share a name (their labels would collide), is refused."""
    seen: dict[str, Path] = {}
    for run_dir in run_dirs:
        real = run_dir.resolve()
        if str(real) in {str(p.resolve()) for p in seen.values()}:
            raise BadInput(f"{run_dir}: the same run directory is given twice")
        if run_dir.name in seen:
            raise BadInput(f"{run_dir} and {seen[run_dir.name]}: two run directories named {run_dir.name!r}; "
                           f"the report labels models by run folder name, so rename one")
        seen[run_dir.name] = run_dir


def _model_rows(run_dir: Path, cells: list[CellResult], several_runs: bool, options: ReportOptions) -> list[dict]:
    model = cells[0].model
    label = _group_label(str(run_dir), model, several_runs)
    clean = next((c for c in cells if c.is_clean and c.ok), None)
    clean_docs = _documents(run_dir, clean) if clean else None
    by_noise: dict[str, list[CellResult]] = {}
    for c in cells:
        by_noise.setdefault(c.noise, []).append(c)
    noises = [CLEAN] + [n for n in by_noise if n != CLEAN] if CLEAN in by_noise else list(by_noise)
    rows = []
    for noise in noises:
        group = by_noise[noise]
        ok = [c for c in group if c.ok]
        failed = [c for c in group if not c.ok]
        first = group[0]
        row = {
            "run": str(run_dir), "label": label, "model": model, "corpus": first.corpus,
            "corpus_sha256": first.corpus_sha256, "noise": noise,
            "seeds": ",".join(str(c.seed) for c in ok), "documents": first.documents,
            "level": first.level, "architecture": first.architecture,
            "status": "ok" if not failed else ("failed" if not ok else f"{len(failed)} seed(s) failed"),
            "error": "; ".join(str(c.error) for c in failed) or None,
            "undefined": "; ".join(sorted({f"{k}: {v}" for c in ok for k, v in c.undefined.items()})) or None,
        }
        for metric in METRICS:
            row.update({metric: math.nan, f"{metric}_low": math.nan, f"{metric}_high": math.nan})
        if ok:
            row["word_perplexity"] = _mean(c.word_perplexity for c in ok)
            row["bits_per_byte"] = _mean(c.bits_per_byte for c in ok)
            row["bits_per_clean_byte"] = _mean(c.bits_per_clean_byte for c in ok)
            if clean is not None and clean.word_perplexity is not None:
                row["ppl_increase"] = row["word_perplexity"] - clean.word_perplexity
            _add_intervals(row, run_dir, ok, clean_docs, options)
        rows.append(row)
    return rows


def _documents(run_dir: Path, result: CellResult) -> stats.DocumentArrays | None:
    try:
        docs = results_io.read_documents(run_dir, result)
    except BadInput:
        return None
    return stats.DocumentArrays.from_documents(docs) if docs else None


def _add_intervals(row: dict, run_dir: Path, ok: list[dict], clean_docs, options: ReportOptions) -> None:
    arrays = [_documents(run_dir, c) for c in ok]
    if any(a is None for a in arrays) or len({len(a) for a in arrays}) != 1:
        return
    n = len(arrays[0])
    metrics = {
        "word_perplexity": stats.mean_of([stats.word_perplexity(a) for a in arrays]),
        "bits_per_byte": stats.mean_of([stats.bits_per_byte(a) for a in arrays]),
        "bits_per_clean_byte": stats.mean_of([stats.bits_per_clean_byte(a) for a in arrays]),
    }
    if clean_docs is not None and len(clean_docs) == n:
        metrics["ppl_increase"] = stats.difference(metrics["word_perplexity"], stats.word_perplexity(clean_docs))
    for name, metric in metrics.items():
        interval = stats.bootstrap(metric, n, confidence=options.confidence, replicates=options.replicates,
                                   seed=options.seed)
        row[f"{name}_low"], row[f"{name}_high"] = interval.low, interval.high


# ---------------------------------------------------------------------------------------------
# Text formats
# ---------------------------------------------------------------------------------------------

def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|")


def markdown_model_table(rows) -> str:
    lines = ["| noise | word-PPL | increase over clean | bits/byte | bits/clean byte |",
             "|---|---:|---:|---:|---:|"]
    for _, row in rows.iterrows():
        if row["status"] == "failed":
            cells = [f"failed: {_md_escape(row['error'])}", "", "", ""]
        else:
            cells = [format_value(row, "word_perplexity"),
                     "–" if row["noise"] == CLEAN else format_value(row, "ppl_increase", signed=True),
                     format_value(row, "bits_per_byte"), format_value(row, "bits_per_clean_byte")]
        noise = f"`{row['noise']}`" + ("" if row["status"] in ("ok", "failed") else f" ({row['status']})")
        lines.append("| " + " | ".join([noise] + cells) + " |")
    return "\n".join(lines)


def _noise_by_model_table(table, cell) -> str:
    """Noises down, models across; cell(row, clean_row) formats one model's row for one noise."""
    labels = list(dict.fromkeys(table["label"]))
    noises = list(dict.fromkeys(table["noise"]))
    index = {(r["label"], r["noise"]): r for _, r in table.iterrows()}
    lines = ["| noise | " + " | ".join(_md_escape(label) for label in labels) + " |",
             "|---|" + "---:|" * len(labels)]
    for noise in noises:
        cells = []
        for label in labels:
            row = index.get((label, noise))
            cells.append("" if row is None else cell(row, index.get((label, CLEAN))))
        lines.append(f"| `{noise}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_increase_table(table) -> str:
    """The paper's layout: noises down, models across, word-PPL increase over clean in each cell."""
    def cell(row, clean):
        if row["status"] == "failed":
            return "failed"
        if row["noise"] == CLEAN:
            return f"word-PPL {format_ppl(row['word_perplexity'])}"
        return format_value(row, "ppl_increase", interval=False, signed=True)

    return _noise_by_model_table(table, cell)


def markdown_bits_table(table) -> str:
    """Noises down, models across: bits per clean byte and its rise over clean (readable even when
    word-PPL explodes, since it is linear in the NLL)."""
    def cell(row, clean):
        if row["status"] == "failed" or not math.isfinite(row["bits_per_clean_byte"]):
            return "failed"
        if row["noise"] == CLEAN or clean is None or not math.isfinite(clean["bits_per_clean_byte"]):
            return format_bits(row["bits_per_clean_byte"])
        rise = row["bits_per_clean_byte"] - clean["bits_per_clean_byte"]
        return f"{format_bits(row['bits_per_clean_byte'])} ({rise:+.2f})"

    return _noise_by_model_table(table, cell)


_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in str(text))


def latex_tables(table, confidence: float) -> str:
    parts = [f"% robustbench report: word-PPL, its increase over clean and bits per byte, with "
             f"{confidence:.0%} bootstrap intervals over documents. Needs \\usepackage{{booktabs}}."]
    for label, rows in table.groupby("label", sort=False):
        parts.append("\\begin{table}[t]\n\\centering\n\\small")
        caption = (f"{label} on {rows['corpus'].iloc[0]}: word perplexity and its increase over clean text; "
                   f"bits per byte of the noised and of the clean text ({confidence:.0%} bootstrap intervals "
                   f"over documents).")
        parts.append(f"\\caption{{{latex_escape(caption)}}}")
        parts.append("\\begin{tabular}{lrrrr}\n\\toprule")
        parts.append("Noise & Word PPL & Increase & Bits/byte & Bits/clean byte \\\\\n\\midrule")
        for _, row in rows.iterrows():
            if row["status"] == "failed":
                cells = ["\\multicolumn{4}{l}{failed}"]
            else:
                cells = [format_value(row, "word_perplexity"),
                         "--" if row["noise"] == CLEAN else format_value(row, "ppl_increase", signed=True),
                         format_value(row, "bits_per_byte"), format_value(row, "bits_per_clean_byte")]
                cells = [latex_escape(c).replace("–", "--") for c in cells]
            parts.append(f"\\texttt{{{latex_escape(row['noise'])}}} & " + " & ".join(cells) + " \\\\")
        parts.append("\\bottomrule\n\\end{tabular}\n\\end{table}\n")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------

def parse_noise(spec: str) -> tuple[str, dict[str, str]] | None:
    """(name, params) of a canonical single noise spec; None for a composition or clean."""
    if spec == CLEAN or "+" in spec:
        return None
    name, _, rest = spec.partition(":")
    params = dict(item.split("=", 1) for item in rest.split(",") if "=" in item)
    return name, params


def p_families(noises: list[str]) -> dict[str, list[tuple[float, str]]]:
    """Noises with a p, grouped by family (name plus its other parameters): family -> [(p, spec)]."""
    families: dict[str, list[tuple[float, str]]] = {}
    for spec in noises:
        parsed = parse_noise(spec)
        if parsed is None or "p" not in parsed[1]:
            continue
        name, params = parsed
        try:
            p = float(params.pop("p"))
        except ValueError:
            continue
        family = name + "".join(f", {k}={v}" for k, v in sorted(params.items()))
        families.setdefault(family, []).append((p, spec))
    return {k: sorted(v) for k, v in families.items()}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "robustbench"  # stable element ids in SVG files
    import matplotlib.pyplot as plt

    return plt


_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#7f7f7f", "#bcbd22"]


def _save(fig, out_dir: Path, stem: str) -> list[Path]:
    """Writes the figure as PNG and SVG, then closes it."""
    paths = []
    for ext in ("png", "svg"):
        path = out_dir / f"{stem}.{ext}"
        with atomic_path(path) as tmp:
            # no creation date in the SVG: an unchanged report rewrites identical files
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight",
                        metadata={"Date": None} if ext == "svg" else None)
        paths.append(path)
    _pyplot().close(fig)
    return paths


def _errors(values, lows, highs):
    """Asymmetric error bars, zero where the interval is unknown."""
    import numpy as np

    values, lows, highs = (np.asarray(x, dtype=float) for x in (values, lows, highs))
    below = np.where(np.isfinite(lows), values - lows, 0.0)
    above = np.where(np.isfinite(highs), highs - values, 0.0)
    return np.clip(np.vstack([below, above]), 0.0, None)


def _thin_symlog_labels(ax, linthresh: float) -> None:
    """Label 0 and the decades clear of the linear band; the ticks next to 0 would overlap."""
    from matplotlib.ticker import FuncFormatter

    decade_fmt = ax.xaxis.get_major_formatter()

    def label(x, pos):
        if x == 0:
            return "0"
        return decade_fmt(x, pos) if abs(x) >= 10 * linthresh * 0.999 else ""

    ax.xaxis.set_major_formatter(FuncFormatter(label))


def plot_increase(table, out_dir: Path, confidence: float = 0.95) -> list[Path]:
    """Horizontal grouped bars: word-PPL increase over clean per noise, one colour per model."""
    import numpy as np

    plt = _pyplot()
    noisy = table[(table["noise"] != CLEAN) & table["ppl_increase"].notna()]
    if noisy.empty:
        return []
    labels = list(dict.fromkeys(noisy["label"]))
    noises = list(dict.fromkeys(noisy["noise"]))
    height = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.32 * len(noises) * max(1, len(labels)) ** 0.8))
    values = noisy["ppl_increase"].to_numpy(dtype=float)
    positive = values[values > 0]
    log = bool(values.min() > 0 and positive.max() / positive.min() > 30)
    symlog = bool(not log and values.min() < 0 and np.abs(values).max() > 100)
    lo, hi = 0.0, 0.0
    for i, label in enumerate(labels):
        rows = noisy[noisy["label"] == label].set_index("noise").reindex(noises)
        y = np.arange(len(noises)) + (i - (len(labels) - 1) / 2) * height
        v = rows["ppl_increase"].to_numpy(dtype=float)
        err = _errors(v, rows["ppl_increase_low"], rows["ppl_increase_high"])
        lo, hi = min(lo, np.nanmin(v - err[0])), max(hi, np.nanmax(v + err[1]))
        if log:  # a log axis cannot show whiskers below zero
            err[0] = np.minimum(err[0], v * 0.999)
        ax.barh(y, v, height=height * 0.92, xerr=err, color=_COLORS[i % len(_COLORS)], label=label,
                error_kw={"elinewidth": 0.9, "capsize": 2, "ecolor": "#333333"})
    ax.set_yticks(np.arange(len(noises)), noises)
    ax.invert_yaxis()
    if log:
        ax.set_xscale("log")
    elif symlog:
        nonzero = np.abs(values[values != 0])
        linthresh = max(1.0, float(nonzero.min()) / 10 if nonzero.size else 1.0)
        ax.set_xscale("symlog", linthresh=linthresh)
        ax.set_xlim(lo * 3, max(hi * 3, 1.0))  # autoscaling drops the negative side of a symlog axis
        _thin_symlog_labels(ax, linthresh)
    ax.axvline(0, color="black", linewidth=0.8)
    scale = " (log scale)" if log else (" (symmetric log scale)" if symlog else "")
    ax.set_xlabel(f"word-perplexity increase over clean text (perplexity points){scale}")
    ax.set_ylabel("noise")
    ax.set_title("How much each noise raises word-level perplexity")
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.legend(title=f"model\n(whiskers: {confidence:.0%} interval)", loc="upper left", bbox_to_anchor=(1.01, 1.0),
              fontsize="small", title_fontsize="small")
    return _save(fig, out_dir, "ppl_increase")


def plot_bits_vs_p(table, out_dir: Path, confidence: float = 0.95) -> list[Path]:
    """Bits per clean byte against the noise probability p, one panel per noise family."""
    plt = _pyplot()
    families = p_families(list(dict.fromkeys(table["noise"])))
    if not families:
        return []
    labels = list(dict.fromkeys(table["label"]))
    columns = min(4, len(families))
    rows_n = math.ceil(len(families) / columns)
    fig, axes = plt.subplots(rows_n, columns, figsize=(3.4 * columns + 0.6, 3.1 * rows_n + 0.5),
                             sharey=True, squeeze=False)
    for ax, (family, points) in zip(axes.flat, families.items()):
        for i, label in enumerate(labels):
            rows = table[table["label"] == label].set_index("noise")
            xs, ys, lows, highs = [], [], [], []
            if CLEAN in rows.index:
                clean = rows.loc[CLEAN]
                xs.append(0.0)
                ys.append(clean["bits_per_clean_byte"])
                lows.append(clean["bits_per_clean_byte_low"])
                highs.append(clean["bits_per_clean_byte_high"])
            for p, spec in points:
                if spec in rows.index:
                    xs.append(p)
                    ys.append(rows.loc[spec, "bits_per_clean_byte"])
                    lows.append(rows.loc[spec, "bits_per_clean_byte_low"])
                    highs.append(rows.loc[spec, "bits_per_clean_byte_high"])
            if not xs:
                continue
            color = _COLORS[i % len(_COLORS)]
            ax.errorbar(xs, ys, yerr=_errors(ys, lows, highs), color=color, marker="o", markersize=4,
                        capsize=2, linewidth=1.4, label=label)
        ax.set_title(family)
        ax.set_xlabel("noise probability p (0 = clean)")
        ticks = sorted({0.0} | {p for p, _ in points})
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks], fontsize="small")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(families):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("bits per clean byte")
    handles, legend_labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, legend_labels, title=f"model (whiskers: {confidence:.0%} interval)", loc="upper center",
               ncols=min(4, len(labels)),
               bbox_to_anchor=(0.5, 0.0), fontsize="small")
    fig.suptitle("Bits per clean byte as the noise probability grows")
    fig.tight_layout()
    return _save(fig, out_dir, "bits_vs_p")


def plot_clean_vs_noisy(table, out_dir: Path, confidence: float = 0.95) -> list[Path]:
    """Per noise and model: a segment from the clean text's bits per byte to the noisy text's bits
    per clean byte (the same unit: nats of the whole text over the clean text's bytes)."""
    import numpy as np

    plt = _pyplot()
    labels = list(dict.fromkeys(table["label"]))
    noises = [n for n in dict.fromkeys(table["noise"]) if n != CLEAN]
    if not noises:
        return []
    height = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(8, 1.4 + 0.32 * len(noises) * max(1, len(labels)) ** 0.8))
    for i, label in enumerate(labels):
        rows = table[table["label"] == label].set_index("noise")
        if CLEAN not in rows.index:
            continue
        color = _COLORS[i % len(_COLORS)]
        clean = float(rows.loc[CLEAN, "bits_per_clean_byte"])
        y = np.arange(len(noises)) + (i - (len(labels) - 1) / 2) * height
        noisy = rows.reindex(noises)
        v = noisy["bits_per_clean_byte"].to_numpy(dtype=float)
        ax.hlines(y, clean, v, color=color, linewidth=1.2, alpha=0.6)
        ax.scatter(np.full_like(y, clean), y, facecolors="white", edgecolors=color, s=22, zorder=3)
        ax.errorbar(v, y, xerr=_errors(v, noisy["bits_per_clean_byte_low"], noisy["bits_per_clean_byte_high"]),
                    fmt="o", color=color, markersize=4.5, capsize=2, zorder=4, label=label)
        ax.axvline(clean, color=color, linestyle=":", linewidth=0.9)
    ax.set_yticks(np.arange(len(noises)), noises)
    ax.invert_yaxis()
    ax.set_xlabel("bits per clean byte (hollow: clean text, filled: noised text)")
    ax.set_ylabel("noise")
    ax.set_title("Clean against noisy text, per noise")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(title=f"model\n(whiskers: {confidence:.0%} interval)", loc="upper left", bbox_to_anchor=(1.01, 1.0),
              fontsize="small", title_fontsize="small")
    return _save(fig, out_dir, "clean_vs_noisy")


# ---------------------------------------------------------------------------------------------
# Writing a report
# ---------------------------------------------------------------------------------------------

CSV_COLUMNS = ["label", "model", "run", "corpus", "corpus_sha256", "noise", "seeds", "documents", "level",
               "architecture", "status"] + [f"{m}{s}" for m in METRICS for s in ("", "_low", "_high")] + ["error"]


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
    md += ["Files: [report.csv](report.csv) (every number with its interval), "
           "[report.tex](report.tex) (LaTeX tables, needs booktabs).", ""]
    readme = out_dir / "README.md"
    write_text_atomic(readme, "\n".join(md))
    return {"table": table, "readme": readme, "csv": csv_path, "latex": tex_path, "plots": plots}
