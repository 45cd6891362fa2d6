"""How numbers and plain-text tables are written: the same in the terminal, the report and the CI gate's summary."""

from __future__ import annotations

import math

NA = "–"


def format_ppl(value: float) -> str:
    if value is None or not math.isfinite(value):
        return NA
    magnitude = abs(value)
    if magnitude >= 1e7:
        return f"{value:.3g}"
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_bits(value: float) -> str:
    return NA if value is None or not math.isfinite(value) else f"{value:.4f}"


def format_ratio(value: float) -> str:
    """A ratio of two quantities (how many times another): three significant digits."""
    return NA if value is None or not math.isfinite(value) else f"{value:.3g}"


def format_accuracy(value: float) -> str:
    """A share of items right (acc, acc_norm, or a change in one): three decimals."""
    return NA if value is None or not math.isfinite(value) else f"{value:.3f}"


UNDEFINED = "n/a"


def format_measured_bits(value: float | None) -> str:
    """Bits per byte that may not have been measured (a split without documents): n/a then."""
    return UNDEFINED if value is None else format_bits(value)


def _known(n) -> bool:
    """A count a listing can show (a config or a plug-in may give anything)."""
    return isinstance(n, (int, float)) and not isinstance(n, bool) and math.isfinite(n)


def format_size(n: int | None) -> str:
    """A size in bytes, in decimal units to one decimal (12.3 MB); ? when unknown."""
    if not _known(n):
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def format_count(n: int | None) -> str:
    """A count of parameters or tokens, short (135.0M, 12K, 512); ? when unknown."""
    if not _known(n):
        return "?"
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}K" if n >= 1e3 else str(n)


def has_no_interval(row) -> bool:
    """Whether a report row says it has no interval (too few documents or items to resample)."""
    why = row.get("interval") if hasattr(row, "get") else None
    return isinstance(why, str) and bool(why)


def format_signed(value: float | None, fmt=None) -> str:
    """A change: its sign always shown (+0.0123, -5.20; -0.0 keeps its minus, as format(x, '+') writes it)."""
    fmt = fmt or format_bits
    if value is None or not math.isfinite(value):
        return NA
    return ("+" if math.copysign(1.0, value) > 0 else "") + fmt(value)


def format_interval(interval, fmt) -> str:
    """An estimate with its interval (anything with estimate, low and high), each written by fmt; the interval
    only when both bounds are finite."""
    if interval is None:
        return NA
    text = fmt(interval.estimate)
    if math.isfinite(interval.low) and math.isfinite(interval.high):
        text += f" [{fmt(interval.low)}, {fmt(interval.high)}]"
    return text


def short_model_labels(names) -> dict[str, str]:
    """A short label for each model name (a zoo name, hf:PATH, a checkpoint's path): the fewest trailing path
    parts that still tell the names apart ('runs/ckpt/new' -> 'new', unless another name also ends in 'new');
    names without a path stay as they are. For tables; the full names belong in machine-readable output."""
    names = list(dict.fromkeys(names))
    parts = {name: [p for p in name.replace("\\", "/").split("/") if p] or [name] for name in names}
    labels = {}
    for name in names:
        for k in range(1, len(parts[name]) + 1):
            label = "/".join(parts[name][-k:])
            clash = [other for other in names if other != name and "/".join(parts[other][-k:]) == label]
            if not clash:
                break
        else:
            label = name
        if name.startswith("hf:") and not label.startswith("hf:"):
            label = "hf:" + label
        labels[name] = label
    return labels


def text_table(header: list[str], body: list[list[str]], numeric: set[int]) -> str:
    """A plain-text table: numeric columns right-aligned."""
    widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]

    def line(row):
        return "  ".join(cell.rjust(w) if i in numeric else cell.ljust(w)
                         for i, (cell, w) in enumerate(zip(row, widths))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(row) for row in body])
