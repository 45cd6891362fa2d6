"""The report's tables as Markdown, LaTeX and plain text (the terminal summary of `run`), one column layout for all."""

from __future__ import annotations

import math

from robustbench_bytes.results import metrics
from robustbench_bytes.formatting import NA, UNDEFINED, format_interval, format_signed, text_table
from robustbench_bytes.report.leaderboard import Leaderboard, LeaderboardEntry, Standing, standing
from robustbench_bytes.results.schema import CLEAN


def cell_columns() -> list[tuple[str, bool]]:
    """(column, signed): the per-model table's columns after the noise, in the report's and the terminal's order:
    the metric table's report columns, a change over clean signed."""
    changes = changes_over_clean()
    return [(column, column in changes) for column in metrics.report_columns()]


def changes_over_clean() -> set[str]:
    """The columns that are a change over clean (no value on the clean row)."""
    return {spec.change for spec in metrics.report_specs() if spec.change}


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|")


def cell_texts(row, intervals=None) -> list[str]:
    """One report row's numbers in cell_columns order ("–" for a change on the clean row); intervals: the
    metrics shown with their interval (default: all)."""
    columns = cell_columns()
    if row["status"] == "failed":
        return [f"failed: {row['error']}"] + [""] * (len(columns) - 1)
    return ["–" if signed and row["noise"] == CLEAN else
            metrics.format_value(row, metric, intervals is None or metric in intervals, signed)
            for metric, signed in columns]


def column_labels() -> list[str]:
    labels = metrics.labels()
    return [labels[m] for m, _ in cell_columns()]


def status_suffix(row) -> str:
    """" (1 seed(s) failed)" when some seeds of a row failed, else ""."""
    return "" if row["status"] in ("ok", "failed") else f" ({row['status']})"


def noise_label(row) -> str:
    return str(row["noise"]) + status_suffix(row)


def _percent(value: float) -> str:
    return NA if value is None or not math.isfinite(value) else f"{value:.1%}"


def _format(board: Leaderboard):
    """How the leaderboard's numbers are written: the format of the metric it ranks by."""
    return metrics.spec_of(board.metric).format


def leaderboard_header(board: Leaderboard) -> list[str]:
    """The leaderboard's columns: the ranking measure first after the model, then clean, change, relative change."""
    noises = sorted({e.noises for e in board.entries})
    over = f" (mean, {noises[0]} noises)" if len(noises) == 1 else " (mean over the noises)"
    return ["rank", "model", "level", f"noised {metrics.spec_of(board.metric).label}{over}", board.clean_measure,
            board.change_name, f"relative {board.change_name}",
            "items" if board.metric in metrics.ACCURACIES else "documents"]


def _change_text(interval, fmt) -> str:
    """A change with its sign, its interval's bounds as the report's other changes write them (no sign)."""
    text = format_signed(interval.estimate, fmt)
    if math.isfinite(interval.low) and math.isfinite(interval.high):
        text += f" [{fmt(interval.low)}, {fmt(interval.high)}]"
    return text


def leaderboard_texts(entry: LeaderboardEntry, board: Leaderboard) -> list[str]:
    """One leaderboard row in leaderboard_header's order."""
    fmt = _format(board)
    level = "/".join(str(x) for x in (entry.level, entry.architecture) if isinstance(x, str))
    if entry.missing:
        numbers = [f"n/a ({entry.missing})", NA, NA, NA]
    else:
        numbers = [format_interval(entry.noised, fmt), format_interval(entry.clean, fmt),
                   _change_text(entry.change, fmt), _change_text(entry.relative_change, _percent)]
        if entry.interval_note and not math.isfinite(entry.noised.low):
            numbers = [f"{t} [{UNDEFINED}]" for t in numbers]
    return ["–" if entry.rank is None else str(entry.rank), str(entry.label), level, *numbers, str(entry.documents)]


def markdown_leaderboard(board: Leaderboard) -> str:
    lines = ["| " + " | ".join(leaderboard_header(board)) + " |", "|---:|---|---|---:|---:|---:|---:|---:|"]
    for entry in board.entries:
        lines.append("| " + " | ".join(_md_escape(t) for t in leaderboard_texts(entry, board)) + " |")
    return "\n".join(lines)


def leaderboard_notes(board: Leaderboard, markdown: bool = True) -> list[str]:
    """What the leaderboard's order says, measure by measure: "most robust" only where the best model's interval
    clears every other model's; "intervals overlap" where it does not; and why the ranking is by the noised
    score (a model weak on clean text can lose little)."""
    fmt = _format(board)
    bold = (lambda t: f"**{t}**") if markdown else (lambda t: t)
    change, better = board.change_name, ("highest" if board.higher_is_better else "lowest")
    notes = []

    def verdict(s: Standing) -> str:
        if s.clear:
            return "its interval clears every other model's: the order holds"
        return f"intervals overlap with {', '.join(s.overlaps)}: the order is not resolved"

    best = standing(board, "noised", lower_is_better=not board.higher_is_better)
    if best is not None:
        notes.append(f"{bold('Best on noised text')} ({better} {board.measure}): {best.entry.label}, "
                     f"{format_interval(best.value, fmt)}; {verdict(best)}.")
    for field, name, value_fmt in (("change", change, fmt), ("relative_change", f"relative {change}", _percent)):
        s = standing(board, field, lower_is_better=True)
        if s is None:
            continue
        title = f"Most robust by the {name}" if s.clear else f"Smallest {name}"
        notes.append(f"{bold(title)}: {s.entry.label}, {_change_text(s.value, value_fmt)}; {verdict(s)}.")
    if len(board.ranked) >= 2:
        notes.append(f"{bold('Why rank by noised text')}: it is what a reader of noised text gets. A model weak on "
                     f"clean text can lose little (its predictions are already poor), so a small {change}, or "
                     f"relative {change}, alone rewards weakness: read it beside the clean score.")
        smallest = standing(board, "change", lower_is_better=True)
        sign = -1.0 if board.higher_is_better else 1.0  # the worst clean score: the most bits, the least accuracy
        worst_clean = max(board.ranked, key=lambda e: sign * e.clean.estimate)
        if smallest is not None and smallest.entry is worst_clean and best is not None \
                and best.entry is not worst_clean:
            notes[-1] += (f" Here {worst_clean.label} has the smallest {change} and the worst clean score "
                          f"({fmt(worst_clean.clean.estimate)}).")
    return notes


def markdown_model_table(rows) -> str:
    lines = ["| noise | " + " | ".join(column_labels()) + " |", "|---|" + "---:|" * len(cell_columns())]
    for _, row in rows.iterrows():
        lines.append("| " + " | ".join([f"`{row['noise']}`{status_suffix(row)}"]
                                       + [_md_escape(c) for c in cell_texts(row)]) + " |")
    return "\n".join(lines)


def noise_by_model_cells(table, cell) -> tuple[list[str], list[str], list[list[str]]]:
    """Noises down, models across: (model labels, noises, cell texts); cell(row) formats one model's row."""
    labels = list(dict.fromkeys(table["label"]))
    noises = list(dict.fromkeys(table["noise"]))
    index = {(r["label"], r["noise"]): r for _, r in table.iterrows()}
    body = [["" if index.get((label, noise)) is None else cell(index[(label, noise)]) for label in labels]
            for noise in noises]
    return labels, noises, body


def _noise_by_model_table(table, cell) -> str:
    labels, noises, body = noise_by_model_cells(table, cell)
    lines = ["| noise | " + " | ".join(_md_escape(label) for label in labels) + " |",
             "|---|" + "---:|" * len(labels)]
    lines += [f"| `{noise}` | " + " | ".join(_md_escape(c) for c in cells) + " |" for noise, cells in zip(noises, body)]
    return "\n".join(lines)


def increase_cell(row) -> str:
    """The paper's measure: word-PPL increase over clean with its paired interval (word-PPL on the clean row)."""
    if row["status"] == "failed":
        return "failed"
    if row["noise"] == CLEAN:
        return f"word-PPL {metrics.format_value(row, 'word_perplexity', interval=False)}"
    return metrics.format_value(row, "ppl_increase", signed=True)


def rise_cell(row) -> str:
    """Bits per clean byte with its rise over clean and the rise's paired interval."""
    if row["status"] == "failed" or not math.isfinite(row["bits_per_clean_byte"]):
        return "failed"
    bits = metrics.format_value(row, "bits_per_clean_byte", interval=False)
    if row["noise"] == CLEAN or not math.isfinite(row["bits_rise"]):
        return bits
    return f"{bits} ({metrics.format_value(row, 'bits_rise', signed=True)})"


def markdown_increase_table(table) -> str:
    """The paper's layout: noises down, models across, word-PPL increase over clean in each cell."""
    return _noise_by_model_table(table, increase_cell)


def markdown_bits_table(table) -> str:
    """Noises down, models across: bits per clean byte and its rise over clean (readable even when
    word-PPL explodes, since it is linear in the NLL)."""
    return _noise_by_model_table(table, rise_cell)


def text_leaderboard(board: Leaderboard, title: str = "Leaderboard") -> str:
    """The leaderboard as plain text: which measure ranks it, the table, and what its order says."""
    body = [leaderboard_texts(e, board) for e in board.entries]
    order = "highest" if board.higher_is_better else "lowest"
    return "\n".join([f"{title} (ranked by {board.measure}, {order} first; brackets: {board.confidence:.0%} paired "
                      "bootstrap intervals):", text_table(leaderboard_header(board), body, {0, 3, 4, 5, 6, 7})]
                     + leaderboard_notes(board, markdown=False))


def text_summary(table, board: Leaderboard | None, confidence: float) -> str:
    """The terminal summary of `run`: the report's leaderboard and its per-model table, in the same columns and
    units (seeds pooled by their mean; brackets: the report's bootstrap intervals, shown for the changes only
    to keep lines short)."""
    if table.empty:
        return "no perplexity cells"
    parts = []
    if board is not None and len(board):
        parts += [text_leaderboard(board), ""]
    n = len(cell_columns())
    body = [[str(r["label"]), noise_label(r), r["seeds"] or "–"]
            + ([f"FAILED: {r['error']}"] + [""] * (n - 1) if r["status"] == "failed"
               else cell_texts(r, changes_over_clean())) for _, r in table.iterrows()]
    parts.append(text_table(["model", "noise", "seeds"] + column_labels(), body, set(range(3, 3 + n))))
    undefined = [f"  {r['label']} / {r['noise']}: {metric} n/a ({why})" for _, r in table.iterrows()
                 if isinstance(r.get("undefined"), str)
                 for metric, _, why in (part.partition(": ") for part in r["undefined"].split("; "))]
    if undefined:
        parts += ["", "undefined metrics (the cells are valid):", *undefined]
    return "\n".join(parts)


_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in str(text))


def latex_tables(table, confidence: float) -> str:
    parts = [f"% robustbench report: bits per clean byte and its rise over clean, bits per byte, word-PPL and "
             f"its increase, with {confidence:.0%} bootstrap intervals over documents. Needs \\usepackage{{booktabs}}."]
    n = len(cell_columns())
    for label, rows in table.groupby("label", sort=False):
        parts.append("\\begin{table}[t]\n\\centering\n\\small")
        caption = (f"{label} on {rows['corpus'].iloc[0]}: bits per clean byte and its rise over clean text, bits "
                   f"per byte of the noised text, word perplexity and its increase over clean text "
                   f"({confidence:.0%} bootstrap intervals over documents; paired for the changes).")
        parts.append(f"\\caption{{{latex_escape(caption)}}}")
        parts.append("\\begin{tabular}{l" + "r" * n + "}\n\\toprule")
        parts.append("Noise & " + " & ".join(latex_escape(c[:1].upper() + c[1:]) for c in column_labels())
                     + " \\\\\n\\midrule")
        for _, row in rows.iterrows():
            if row["status"] == "failed":
                cells = [f"\\multicolumn{{{n}}}{{l}}{{failed}}"]
            else:
                cells = [latex_escape(c).replace("–", "--") for c in cell_texts(row)]
            parts.append(f"\\texttt{{{latex_escape(row['noise'])}}} & " + " & ".join(cells) + " \\\\")
        parts.append("\\bottomrule\n\\end{tabular}\n\\end{table}\n")
    return "\n".join(parts)


def undefined_notes(table) -> list[str]:
    """Why a table says n/a: each (model, noise) whose metrics are undefined, with the reason."""
    return [f"{row['label']}, {row['noise']}: {row['undefined']}" for _, row in table.iterrows()
            if isinstance(row.get("undefined"), str)]


def markdown_undefined_notes(table) -> str:
    lines = [f"- {_md_escape(n)}" for n in undefined_notes(table)]
    return "\n".join(["n/a: undefined metrics (the cell is valid; its NLL and bits per byte are finite):", *lines]) \
        if lines else ""


__all__ = ["cell_texts", "latex_tables", "markdown_bits_table", "markdown_increase_table",
           "markdown_leaderboard", "markdown_model_table", "text_summary"]


def least_loss_rows(table) -> list[dict]:
    """Per noise: which model loses least by the rise in bits per clean byte and by the word-PPL increase (the
    paper's measure), each with its interval, and whether that interval clears every other model's."""
    rows = []
    for noise in [n for n in dict.fromkeys(table["noise"]) if n != CLEAN]:
        group = table[(table["noise"] == noise) & (table["status"] != "failed")]
        entry = {"noise": noise}
        for metric in ("bits_rise", "ppl_increase"):
            ranked = group[group[metric].map(lambda v: isinstance(v, float) and math.isfinite(v))]
            if ranked.empty:
                entry[metric] = None
                continue
            best = ranked.loc[ranked[metric].idxmin()]
            others = ranked.drop(index=best.name)
            clear = bool(len(others)) and all(best[f"{metric}_high"] < o[f"{metric}_low"] for _, o in others.iterrows())
            entry[metric] = {"label": best["label"], "text": metrics.format_value(best, metric, signed=True), "clear": clear}
        rows.append(entry)
    return rows


def markdown_least_loss(table) -> str:
    """The table behind "which model loses least under each noise", by both measures."""
    def cell(e):
        if e is None:
            return "n/a"
        return f"{_md_escape(e['label'])}: {e['text']}" + ("" if e["clear"] else " (intervals overlap)")

    lines = ["| noise | least rise in bits/clean byte | least word-PPL increase (the paper's measure) |",
             "|---|---|---|"]
    for e in least_loss_rows(table):
        lines.append(f"| `{e['noise']}` | {cell(e['bits_rise'])} | {cell(e['ppl_increase'])} |")
    return "\n".join(lines)
