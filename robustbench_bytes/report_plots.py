"""The report's plots (PNG and SVG, written atomically)."""

from __future__ import annotations

import math
from pathlib import Path

from robustbench_bytes.files import atomic_path
from robustbench_bytes.result_schema import CLEAN


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
