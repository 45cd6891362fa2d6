"""What the gate reads is checked before it compares: every listed result's field types, and every stored cell
against its own records and labels (results.verified_problem), so an edited cell is refused (exit 2), never
compared."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from robustbench_bytes import results as results_io
from robustbench_bytes.errors import NotComparable


_TYPES = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "dict": (dict,), "list": (list,),
          "None": (type(None),)}


def field_type_problem(result) -> str | None:
    """The first field of a loaded result object (CellResult, TaskResult) whose value is not of its declared type
    (a string for a number, a list for an object), or a number no float can hold; None when every field is.
    (A check that belongs in result_schema's reader; the gate runs it on everything it reads.)"""
    for f in fields(result):
        if f.name == "extra":
            continue
        value, allowed = getattr(result, f.name), [t.strip() for t in str(f.type).split("|")]
        expected = " or ".join("null" if t == "None" else ("a number" if t == "float" else f"a {t}") for t in allowed)
        if isinstance(value, bool) and "bool" not in allowed \
                or not isinstance(value, tuple(t for name in allowed for t in _TYPES.get(name, (object,)))):
            return f"field {f.name!r} is {type(value).__name__} {_brief(value)}; expected {expected}"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                float(value)
            except OverflowError:
                return f"field {f.name!r} is a number past the float range; expected {expected}"
    cell = result.extra.get("cell")
    if cell is not None and not isinstance(cell, str):
        return f"field 'cell' is {type(cell).__name__}; expected a string"
    return None


def _brief(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_types(results, side: str, run_dir: Path, listing: str) -> None:
    """NotComparable naming the run, listing file, entry and field when any listed result has a field of the
    wrong type."""
    for i, r in enumerate(results):
        why = field_type_problem(r)
        if why:
            raise NotComparable(f"{side} {run_dir}: {listing} entry {i}: {why}")


_IDENTITY = ("model", "model_spec", "task", "task_spec", "noise", "seed", "noise_choices", "noise_target", "corpus",
             "corpus_sha256", "task_sha256")


def stored_problem(listed, record, cell: str) -> str | None:
    """Why a listed ok cell (a results.json or tasks.json entry) cannot be trusted by the gate, None when it can:
    a label that is not its cell file's, then the checks a run applies before reusing a stored cell
    (results.verified_problem: totals, derived values, intervals, predictions and labels against its per-document
    or per-item records, the cell name `cell` it is stored under and its inputs) applied to what the listing
    says."""
    for name in _IDENTITY:
        if hasattr(listed, name) and getattr(listed, name) != getattr(record.result, name):
            return f"{name} {getattr(listed, name)!r} is not the cell file's {getattr(record.result, name)!r}"
    records = record.documents if hasattr(record, "documents") else record.items
    return results_io.verified_problem(listed, records, inputs=record.inputs, key=cell)


def check_failed_cell_name(listed, side: str, run_dir: Path) -> None:
    """A failed cell has no records to check; its labels must still give the name it is listed under."""
    stored = listed.extra.get("cell")
    if stored is not None and stored != listed.cell:
        raise refuse(side, run_dir, stored, f"its labels (model, noise, seed) name cell {listed.cell}")


def refuse(side: str, run_dir: Path, cell: str, why: str) -> NotComparable:
    return NotComparable(f"{side} {run_dir}: cell {cell}: {why}; the gate reads only cells whose stored values "
                         f"follow from their records (rerun `robustbench run` on that directory to rescore it)")
