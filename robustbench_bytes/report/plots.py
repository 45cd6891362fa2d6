"""The report's plots (PNG and SVG, written atomically): points with interval whiskers, one colour-blind-safe
colour and one marker per model, and a caption in each figure naming the corpus, documents, bytes, seeds and
what the whiskers are."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

from robustbench_bytes.files import atomic_path
from robustbench_bytes.results.schema import CLEAN


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


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "robustbench"  # stable element ids in SVG files
    matplotlib.rcParams["svg.id"] = None  # no id on the root element (the default; set whatever the user's rc says)
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: SVGs a third the size, searchable in report.html
    import matplotlib.pyplot as plt

    return plt


# Okabe & Ito's colour-blind-safe palette (yellow last: faint on white), and a marker per model so that
# greyscale prints and any colour vision still tell the models apart
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def model_style(index: int) -> dict:
    """Colour and marker of the index-th model of a plot (the same order in every plot of a report)."""
    return {"color": PALETTE[index % len(PALETTE)], "marker": MARKERS[index % len(MARKERS)]}


def caption(table, confidence: float, replicates: int) -> str:
    """What every plot's caption says about the data: corpus, documents, bytes, seeds, and the whiskers."""
    corpora = []
    for (corpus, documents, clean_bytes), _ in table.groupby(["corpus", "documents", "clean_bytes"], sort=False):
        corpora.append(f"{corpus} ({int(documents):,} documents, {int(clean_bytes):,} clean bytes)")
    seeds = sorted({s for text in table["seeds"] if isinstance(text, str) for s in text.split(",") if s})
    few = min((int(d) for d in table["documents"]), default=0)
    whiskers = (f"whiskers: {confidence:.0%} bootstrap intervals over documents ({replicates} replicates), "
                "paired with the clean text for changes" if few >= 2 else
                "no whiskers: a single document has no interval")
    return (f"Corpus {'; '.join(corpora)}; noise seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds) or '0'}; "
            f"{whiskers}.")


def draw_caption(ax, text: str, width: int = 110, below: float = 42) -> None:
    """The caption `below` points under an axes' bottom edge, past its x label (in points, so that it never
    overlaps whatever the figure's size)."""
    ax.annotate(textwrap.fill(text, width), xy=(0, 0), xycoords="axes fraction", xytext=(-40, -below),
                textcoords="offset points", ha="left", va="top", fontsize="small", color="#333333",
                annotation_clip=False)


# byte-reproducible files: no creation date, no library version (an unchanged report rewrites identical files, and
# a matplotlib upgrade changes a file only where its drawing changes); SVG ids come from svg.hashsalt
REPRODUCIBLE_METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}


def save_figure(fig, out_dir: Path, stem: str) -> list[Path]:
    """Writes the figure as PNG and SVG, then closes it."""
    paths = []
    for ext in ("png", "svg"):
        path = out_dir / f"{stem}.{ext}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight", metadata=REPRODUCIBLE_METADATA[ext])
        paths.append(path)
    pyplot().close(fig)
    return paths


def _errors(values, lows, highs):
    """Asymmetric error bars, zero where the interval is unknown."""
    import numpy as np

    values, lows, highs = (np.asarray(x, dtype=float) for x in (values, lows, highs))
    below = np.where(np.isfinite(lows), values - lows, 0.0)
    above = np.where(np.isfinite(highs), highs - values, 0.0)
    return np.clip(np.vstack([below, above]), 0.0, None)


def _thin_symlog_labels(ax, linthresh: float, largest: float) -> None:
    """On a symmetric-log x axis, label 0 and about five decades a side (neighbouring labels would overlap)."""
    from matplotlib.ticker import FuncFormatter

    step = max(1, math.ceil(math.log10(max(largest, linthresh * 10) / linthresh) / 5))

    def label(x, _pos):
        if x == 0:
            return "0"
        exponent = round(math.log10(abs(x)))
        if abs(x) < linthresh * 9.99 or exponent % step:
            return ""
        return ("−" if x < 0 else "") + f"$10^{{{exponent}}}$"

    ax.xaxis.set_major_formatter(FuncFormatter(label))


def draw_legend(ax, title: str = "model") -> None:
    if not ax.get_legend_handles_labels()[0]:
        return
    ax.legend(title=title, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small",
              title_fontsize="small")


def _noise_rows_plot(table, metric: str, out_dir: Path, stem: str, xlabel: str, title: str, text: str,
                     log: bool = False) -> list[Path]:
    """Noises down, one point per model (dodged) with its interval whiskers along x."""
    import numpy as np

    plt = pyplot()
    noisy = table[(table["noise"] != CLEAN) & table[metric].notna()]
    if noisy.empty:
        return []
    values = noisy[metric].to_numpy(dtype=float)
    lows = noisy[f"{metric}_low"].to_numpy(dtype=float)
    # a log axis has no zero: with a change at or below 0 (a point or a whisker) the axis is symmetric-log
    symlog = log and bool((values <= 0).any() or (np.isfinite(lows) & (lows <= 0)).any())
    smallest = float(np.abs(values[values != 0]).min()) if (values != 0).any() else 10.0
    linthresh = 10.0 ** math.floor(math.log10(max(10.0, smallest) / 10))  # a power of ten below every point
    labels = list(dict.fromkeys(table["label"]))
    noises = list(dict.fromkeys(noisy["noise"]))
    step = 0.7 / max(1, len(labels))
    fig, ax = plt.subplots(figsize=(8, 1.3 + 0.3 * len(noises) * max(1, len(labels)) ** 0.6))
    ends = []
    for i, label in enumerate(labels):
        rows = noisy[noisy["label"] == label].set_index("noise").reindex(noises)
        if rows[metric].isna().all():
            continue
        y = np.arange(len(noises)) + (i - (len(labels) - 1) / 2) * step
        v = rows[metric].to_numpy(dtype=float)
        err = _errors(v, rows[f"{metric}_low"], rows[f"{metric}_high"])
        ax.errorbar(v, y, xerr=err, linestyle="none", markersize=5.5, capsize=3, elinewidth=1.2,
                    label=label, **model_style(i))
        ends += [float(np.nanmin(v - err[0])), float(np.nanmax(v + err[1]))]
    ax.set_yticks(np.arange(len(noises)), noises)
    ax.set_ylim(len(noises) - 0.5, -0.5)
    lo, hi = min(ends), max(ends)  # whiskers included: autoscaling a (sym)log axis may cut them
    if symlog:
        ax.set_xlim(lo * 3 if lo < 0 else -linthresh, hi * 3 if hi > 0 else linthresh)
    elif log:
        ax.set_xlim(lo / 2, hi * 2)
    if symlog:
        ax.set_xscale("symlog", linthresh=linthresh)
        ax.axvline(0, color="black", linewidth=0.8)
        _thin_symlog_labels(ax, linthresh, float(np.nanmax(np.abs(values))))
        xlabel += f" (symmetric log scale, linear within ±{linthresh:g})"
    elif log:
        ax.set_xscale("log")
        xlabel += " (log scale)"
    else:
        ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("noise")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    for k in range(1, len(noises)):
        ax.axhline(k - 0.5, color="#dddddd", linewidth=0.6)
    draw_legend(ax)
    draw_caption(ax, text)
    return save_figure(fig, out_dir, stem)


def plot_bits_rise(table, out_dir: Path, text: str) -> list[Path]:
    """The main plot: rise in bits per clean byte over clean per noise and model, with paired intervals."""
    return _noise_rows_plot(table, "bits_rise", out_dir, "bits_rise",
                            "rise in bits per clean byte over clean text (0 = unaffected; lower is more robust)",
                            "How much each noise raises bits per clean byte", text)


def plot_increase(table, out_dir: Path, text: str) -> list[Path]:
    """Word-PPL increase over clean (the paper's measure) on a log axis (symmetric-log when an increase or a
    whisker reaches 0 or below)."""
    return _noise_rows_plot(table, "ppl_increase", out_dir, "ppl_increase",
                            "word-perplexity increase over clean text",
                            "How much each noise raises word-level perplexity", text, log=True)


def plot_bits_vs_p(table, out_dir: Path, text: str) -> list[Path]:
    """Rise in bits per clean byte against the noise probability p, one panel per noise family (p = 0 is the
    clean text: no rise); points dodged along p so that whiskers do not hide each other."""
    import numpy as np

    plt = pyplot()
    families = p_families(list(dict.fromkeys(table["noise"])))
    if not families:
        return []
    labels = list(dict.fromkeys(table["label"]))
    columns = min(4, len(families))
    rows_n = math.ceil(len(families) / columns)
    fig, axes = plt.subplots(rows_n, columns, figsize=(3.5 * columns + 0.8, 3.1 * rows_n + 0.4), squeeze=False)
    for ax, (family, points) in zip(axes.flat, families.items()):
        top = max(p for p, _ in points)
        for i, label in enumerate(labels):
            rows = table[table["label"] == label].set_index("noise")
            found = [(p, spec) for p, spec in points if spec in rows.index and math.isfinite(rows.loc[spec, "bits_rise"])]
            if not found:
                continue
            shift = (i - (len(labels) - 1) / 2) * top * 0.025
            xs = np.array([0.0] + [p for p, _ in found]) + shift
            ys = np.array([0.0] + [rows.loc[s, "bits_rise"] for _, s in found])
            lows = [0.0] + [rows.loc[s, "bits_rise_low"] for _, s in found]
            highs = [0.0] + [rows.loc[s, "bits_rise_high"] for _, s in found]
            ax.errorbar(xs, ys, yerr=_errors(ys, lows, highs), markersize=5, capsize=3, elinewidth=1.2,
                        linewidth=1.2, label=label, **model_style(i))
        ax.set_title(family, fontsize="medium")
        ax.set_xlabel("noise probability p (0 = clean)")
        ticks = sorted({0.0} | {p for p, _ in points})
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks], fontsize="small")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(families):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("rise in bits per clean byte")
    handles, legend_labels = axes.flat[0].get_legend_handles_labels()
    fig.suptitle("Rise in bits per clean byte as the noise probability grows (each panel its own scale)")
    fig.tight_layout()
    fig.legend(handles, legend_labels, title="model", loc="upper left", bbox_to_anchor=(1.0, 0.95),
               fontsize="small", title_fontsize="small")
    draw_caption(axes[-1, 0], text, width=int(35 * columns))
    return save_figure(fig, out_dir, "bits_vs_p")


def plot_clean_vs_noisy(table, out_dir: Path, text: str) -> list[Path]:
    """Per noise and model: a segment from the clean text's bits per byte (hollow marker) to the noisy text's
    bits per clean byte (filled; the same unit: nats of the whole text over the clean text's bytes)."""
    import numpy as np

    plt = pyplot()
    labels = list(dict.fromkeys(table["label"]))
    noises = [n for n in dict.fromkeys(table["noise"]) if n != CLEAN]
    if not noises:
        return []
    step = 0.7 / max(1, len(labels))
    fig, ax = plt.subplots(figsize=(8, 1.4 + 0.3 * len(noises) * max(1, len(labels)) ** 0.6))
    for i, label in enumerate(labels):
        rows = table[table["label"] == label].set_index("noise")
        if CLEAN not in rows.index or not math.isfinite(rows.loc[CLEAN, "bits_per_clean_byte"]):
            continue
        style = model_style(i)
        clean = float(rows.loc[CLEAN, "bits_per_clean_byte"])
        y = np.arange(len(noises)) + (i - (len(labels) - 1) / 2) * step
        noisy = rows.reindex(noises)
        v = noisy["bits_per_clean_byte"].to_numpy(dtype=float)
        ax.hlines(y, clean, v, color=style["color"], linewidth=1.0, alpha=0.5)
        ax.scatter(np.full_like(y, clean), y, facecolors="white", edgecolors=style["color"], marker=style["marker"],
                   s=24, zorder=3)
        ax.errorbar(v, y, xerr=_errors(v, noisy["bits_per_clean_byte_low"], noisy["bits_per_clean_byte_high"]),
                    linestyle="none", markersize=5, capsize=3, zorder=4, label=label, **style)
    ax.set_yticks(np.arange(len(noises)), noises)
    ax.set_ylim(len(noises) - 0.5, -0.5)
    ax.set_xlabel("bits per clean byte (hollow: clean text, filled: noised text)")
    ax.set_ylabel("noise")
    ax.set_title("Clean against noisy text, per noise")
    ax.grid(axis="x", alpha=0.3)
    draw_legend(ax)
    draw_caption(ax, text)
    return save_figure(fig, out_dir, "clean_vs_noisy")


PLOT_TITLES = {"bits_rise": "Rise in bits per clean byte over clean text (the main plot)",
               "ppl_increase": "Word-perplexity increase per noise and model",
               "bits_vs_p": "Rise in bits per clean byte against the noise probability p",
               "clean_vs_noisy": "Clean against noisy bits per clean byte"}


def report_plots(table, out_dir: Path, confidence: float, replicates: int) -> list[Path]:
    """Every perplexity plot of a report, main plot first; [] for an empty table."""
    if table.empty:
        return []
    text = caption(table, confidence, replicates)
    return (plot_bits_rise(table, out_dir, text) + plot_increase(table, out_dir, text)
            + plot_bits_vs_p(table, out_dir, text) + plot_clean_vs_noisy(table, out_dir, text))
