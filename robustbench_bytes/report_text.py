"""The report's tables as Markdown and LaTeX."""

from __future__ import annotations

import math

from robustbench_bytes.formatting import format_bits, format_ppl, format_value
from robustbench_bytes.result_schema import CLEAN


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
            return f"word-PPL {format_value(row, 'word_perplexity', interval=False)}"
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


def markdown_undefined_notes(table) -> str:
    """Why a table says n/a: each (model, noise) whose metrics are undefined, with the reason."""
    lines = [f"- {_md_escape(row['label'])}, `{row['noise']}`: {_md_escape(row['undefined'])}"
             for _, row in table.iterrows() if isinstance(row.get("undefined"), str)]
    return "\n".join(["n/a: undefined metrics (the cell is valid; its NLL and bits per byte are finite):", *lines]) \
        if lines else ""
