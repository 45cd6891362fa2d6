"""The report's length section: bits per byte against byte position, and at 1x .. 16x each model's training length.

From the cells' `positions` (positions.py): per (run, model, noise) a curve of bits per byte per position bucket,
with bootstrap intervals over documents (stats.py's draws; several seeds: their mean under the same draws).
"At kx" is the bucket holding byte offset k x L, L the model's declared training length in bytes (for a
subword model that declares only tokens: tokens x the clean cell's bytes per token). Runs without positions
(scored before scoring version 3) give no section.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robustbench_bytes.results import metrics
from robustbench_bytes.results import positions as positions_lib
from robustbench_bytes import results as results_io
from robustbench_bytes import stats
from robustbench_bytes.errors import BadInput
from robustbench_bytes.files import atomic_path
from robustbench_bytes.formatting import NA
from robustbench_bytes.results.schema import CLEAN, CellResult

MULTIPLES = (1, 2, 4, 8, 16)
BITS_PER_BYTE = metrics.METRICS["bits_per_byte"]  # the metric of the curves, bucket by bucket


@dataclass(frozen=True)
class PositionCurve:
    """Bits per byte by position bucket of one (run, model, noise), seeds pooled."""

    run: str
    label: str
    model: str
    noise: str
    bytes: np.ndarray  # per bucket, summed over documents (first seed)
    bits_per_byte: np.ndarray
    low: np.ndarray
    high: np.ndarray
    documents: int
    train_length_bytes: float | None

    @property
    def n_buckets(self) -> int:
        return len(self.bits_per_byte)


@dataclass
class LengthSection:
    markdown: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def position_curves(run_dirs, confidence: float = 0.95, replicates: int = stats.DEFAULT_REPLICATES,
                    seed: int = 0) -> list[PositionCurve]:
    """One curve per (run, model, noise) whose ok cells all carry positions."""
    from robustbench_bytes.report.table import group_label, perplexity_results  # as the rest of the report

    run_dirs = [Path(d) for d in run_dirs]
    curves = []
    for run_dir in run_dirs:
        by_model: dict[str, list[CellResult]] = {}
        for r in perplexity_results(run_dir):
            if r.ok:
                by_model.setdefault(r.model_spec, []).append(r)
        for cells in by_model.values():
            label = group_label(str(run_dir), cells[0].model, len(run_dirs) > 1)
            length = train_length_bytes(cells)
            by_noise: dict[str, list[CellResult]] = {}
            for c in cells:
                by_noise.setdefault(c.noise, []).append(c)
            for noise, group in by_noise.items():
                if any(c.positions is None for c in group):
                    continue
                curve = _curve(run_dir, label, group, length, confidence, replicates, seed)
                if curve is not None:
                    curves.append(curve)
    return curves


def train_length_bytes(cells: list[CellResult]) -> float | None:
    """The model's training length in bytes: declared, or declared tokens x the clean cell's bytes per token."""
    first = cells[0]
    if first.train_length_bytes:
        return float(first.train_length_bytes)
    clean = next((c for c in cells if c.is_clean and c.tokens), None)
    if first.train_length_tokens and clean is not None:
        return first.train_length_tokens * clean.bytes / clean.tokens
    return None


def _document_matrices(run_dir: Path, cell: CellResult) -> tuple[np.ndarray, np.ndarray] | None:
    """(nll, bytes), each (documents, buckets), or None when the documents carry no positions."""
    try:
        docs = results_io.read_documents(run_dir, cell)
    except BadInput:
        return None
    if not docs or any(d.positions is None for d in docs):
        return None
    parts = [positions_lib.Positions.from_json(d.positions, f"{run_dir}: document {d.index}") for d in docs]
    n = max(p.n_buckets for p in parts)
    parts = [p.padded(n) for p in parts]
    return np.array([p.nll for p in parts]), np.array([p.bytes for p in parts], dtype=np.float64)


def _curve(run_dir: Path, label: str, cells: list[CellResult], length, confidence, replicates, seed):
    matrices = [_document_matrices(run_dir, c) for c in cells]
    n_buckets = max(len(c.positions["nll"]) for c in cells)
    if any(m is None for m in matrices) or len({m[0].shape[0] for m in matrices}) != 1:
        totals = [positions_lib.Positions.from_json(c.positions, c.cell).padded(n_buckets) for c in cells]
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.mean([BITS_PER_BYTE.formula({"nll": t.nll, "bytes": t.bytes}) for t in totals], axis=0)
        nan = np.full(n_buckets, math.nan)
        return PositionCurve(str(run_dir), label, cells[0].model, cells[0].noise, totals[0].bytes, value, nan, nan,
                             cells[0].documents, length)
    padded = [(np.pad(nll, ((0, 0), (0, n_buckets - nll.shape[1]))),
               np.pad(nb, ((0, 0), (0, n_buckets - nb.shape[1])))) for nll, nb in matrices]
    n_docs = padded[0][0].shape[0]

    def metric(w):
        with np.errstate(divide="ignore", invalid="ignore"):
            return sum(BITS_PER_BYTE.formula(metrics.WeightedSums({"nll": nll, "bytes": nb}, w))
                       for nll, nb in padded) / len(padded)

    value = metric(np.ones((1, n_docs)))[0]
    if n_docs > 1:
        draws = np.concatenate([metric(w) for w in stats.document_weights(n_docs, replicates, seed)])
        alpha = (1.0 - confidence) / 2.0
        with warnings.catch_warnings():  # a bucket no draw has bytes in is NaN, and says so
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = np.nanquantile(draws, [alpha, 1.0 - alpha], axis=0)
    else:
        low = high = value.copy()
    return PositionCurve(str(run_dir), label, cells[0].model, cells[0].noise, padded[0][1].sum(axis=0), value,
                         low, high, n_docs, length)


def at_multiple(curve: PositionCurve, k: float) -> tuple[float, float, float]:
    """(bits per byte, low, high) in the bucket holding offset k x the training length; NaNs when unknown."""
    nan = (math.nan, math.nan, math.nan)
    if not curve.train_length_bytes:
        return nan
    bucket = int(positions_lib.bucket_of([int(k * curve.train_length_bytes)])[0])
    if bucket >= curve.n_buckets or curve.bytes[bucket] == 0:
        return nan
    return float(curve.bits_per_byte[bucket]), float(curve.low[bucket]), float(curve.high[bucket])


def below_train_length(curve: PositionCurve) -> float:
    """Bits per byte of the buckets wholly below the one holding the training length (NaN when unknown)."""
    if not curve.train_length_bytes:
        return math.nan
    bucket = int(positions_lib.bucket_of([int(curve.train_length_bytes)])[0])
    return math.nan if bucket == 0 else float(_pooled(curve, slice(0, bucket)))


def _pooled(curve: PositionCurve, buckets: slice) -> float:
    nll = np.nansum(curve.bits_per_byte[buckets] * curve.bytes[buckets])
    n = curve.bytes[buckets].sum()
    return nll / n if n else math.nan


def _fmt(value, low=math.nan, high=math.nan) -> str:
    if not math.isfinite(value):
        return NA
    text = BITS_PER_BYTE.format(value)
    if math.isfinite(low) and math.isfinite(high) and (low, high) != (value, value):
        text += f" [{BITS_PER_BYTE.format(low)}, {BITS_PER_BYTE.format(high)}]"
    return text


def _length_text(n: float | None) -> str:
    return "unknown" if not n else f"{n:,.0f}"


def markdown_multiples(curves: list[PositionCurve]) -> str:
    """Bits per byte below and at 1x .. 16x each model's training length, one row per (model, noise)."""
    head = ["model", "noise", "training length (bytes)", "< 1x"] + [f"{k}x" for k in MULTIPLES]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * (len(head) - 3)) + "|"]
    for c in curves:
        cells = [c.label, f"`{c.noise}`", _length_text(c.train_length_bytes), _fmt(below_train_length(c))]
        cells += [_fmt(*at_multiple(c, k)) for k in MULTIPLES]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(curves: list[PositionCurve], path: Path) -> Path:
    """Every bucket of every curve, with its interval."""
    import csv

    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["label", "model", "run", "noise", "bucket_start", "bucket_end", "bytes", "bits_per_byte",
                      "bits_per_byte_low", "bits_per_byte_high", "train_length_bytes"])
        for c in curves:
            edges = positions_lib.edges(c.n_buckets)
            for b in range(c.n_buckets):
                out.writerow([c.label, c.model, c.run, c.noise, edges[b], edges[b + 1], int(c.bytes[b]),
                              repr(float(c.bits_per_byte[b])), repr(float(c.low[b])), repr(float(c.high[b])),
                              "" if c.train_length_bytes is None else repr(float(c.train_length_bytes))])
    return path


def _x(n_buckets: int) -> np.ndarray:
    """Where a bucket is drawn on the log2 axis: the geometric middle of [a, 2a); bucket 0 at 64 / sqrt(2)."""
    return np.array(positions_lib.edges(n_buckets)[1:], dtype=float) / math.sqrt(2.0)


def plot_positions(curves: list[PositionCurve], out_dir: Path, stem: str, title: str,
                   confidence: float) -> list[Path]:
    """One figure, one panel per noise: the clean text first, then each noise's curve (dashed, hollow markers)
    beside the clean one; one colour and marker per model (the same in every panel); each panel its own scale."""
    from matplotlib.ticker import FixedLocator, FuncFormatter

    from robustbench_bytes.report.plots import draw_caption, pyplot, save_figure, model_style

    plt = pyplot()
    labels = list(dict.fromkeys(c.label for c in curves))
    noises = list(dict.fromkeys([CLEAN] + [c.noise for c in curves if c.noise != CLEAN]))
    if not any(c.noise == CLEAN for c in curves):
        noises.remove(CLEAN)
    columns = min(3, len(noises))
    rows_n = math.ceil(len(noises) / columns)
    fig, axes = plt.subplots(rows_n, columns, figsize=(4.6 * columns + 2.2, 3.3 * rows_n + 0.6), squeeze=False)
    for ax, noise in zip(axes.flat, noises):
        top = 0
        for c in (c for c in curves if c.noise in (CLEAN, noise)):
            style = model_style(labels.index(c.label))
            color = style["color"]
            keep = c.bytes > 0
            x = _x(c.n_buckets)[keep]
            dashed = c.noise != CLEAN
            ax.plot(x, c.bits_per_byte[keep], linestyle="--" if dashed else "-", markersize=3.5,
                    markerfacecolor="white" if dashed else color, linewidth=1.1,
                    label=c.label if not dashed else None, **style)
            ax.fill_between(x, c.low[keep], c.high[keep], color=color, alpha=0.15, linewidth=0)
            if c.train_length_bytes and not dashed:
                ax.axvline(c.train_length_bytes, color=color, linestyle=":", linewidth=1.0)
            top = max(top, c.n_buckets)
        ax.set_xscale("log", base=2)
        edges = positions_lib.edges(top)[1:]
        ax.xaxis.set_major_locator(FixedLocator(edges[::max(1, math.ceil(len(edges) / 6))]))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _bytes_label(v)))
        ax.set_title("clean text" if noise == CLEAN else f"{noise} (dashed) and clean", fontsize="medium")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(noises):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("bits per byte")
    for ax in axes[-1, :]:
        ax.set_xlabel("byte offset (log2 scale)")
    handles, legend_labels = axes.flat[0].get_legend_handles_labels()
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_size_inches()[1]))  # room for the title above the panels
    fig.legend(handles, legend_labels, title=f"model (bands: {confidence:.0%} over documents)", loc="upper left",
               bbox_to_anchor=(1.0, 0.95), fontsize="small", title_fontsize="small")
    sizes = sorted({(c.documents, int(c.bytes.sum())) for c in curves if c.noise == CLEAN})
    draw_caption(axes[-1, 0], "Scored text: " + "; ".join(f"{d:,} documents, {b:,} bytes" for d, b in sizes)
             + f" (clean); bands: {confidence:.0%} bootstrap intervals over documents; dotted lines: training "
             "lengths; dashed lines with hollow markers: the noised text (offsets into the noised text); each "
             "panel has its own scale.", width=int(45 * columns))
    return save_figure(fig, out_dir, stem)


def _bytes_label(v: float) -> str:
    v = int(round(v))
    for unit, size in (("M", 1 << 20), ("K", 1 << 10)):
        if v >= size and v % size == 0:
            return f"{v // size}{unit}"
    return str(v)


def length_section(run_dirs, out_dir: Path, confidence: float = 0.95, replicates: int = stats.DEFAULT_REPLICATES,
                   seed: int = 0, plots: bool = True) -> LengthSection:
    """The Markdown of the report's length section and the files it wrote (length.csv, plots/length.*)."""
    curves = position_curves(run_dirs, confidence, replicates, seed)
    section = LengthSection()
    if not curves:
        return section
    out_dir = Path(out_dir)
    section.files.append(write_csv(curves, out_dir / "length.csv"))
    clean = [c for c in curves if c.noise == CLEAN]
    pct = f"{confidence:.0%}"
    md = ["## Bits per byte by position", "",
          "Bits per byte of the tokens ending in each byte-offset bucket of the scored (noised) text ([0, 64), "
          "[64, 128), [128, 256), ...), against the offset on a log2 axis; bands: "
          f"{pct} bootstrap intervals over documents. A dotted line marks each model's training length "
          "(the sequence length it was trained on; a Transformer is scored in rolling windows no longer than "
          "its context). The table gives bits per byte in the bucket holding offset k x the training length, "
          "and pooled over the buckets below it (< 1x). Every bucket: [length.csv](length.csv).", ""]
    if plots:
        plots_dir = out_dir / "plots"
        plots_dir.mkdir(exist_ok=True)
        files = plot_positions(curves, plots_dir, "length", "Bits per byte by position, per noise", confidence)
        section.files += files
        md += [f"![Bits per byte by position, one panel per noise](plots/{files[0].name}) "
               f"([SVG](plots/{files[1].name}))", ""]
    md += [markdown_multiples(clean + [c for c in curves if c.noise != CLEAN]), ""]
    section.markdown = md
    return section
