"""Run directories on disk and a pandas view of them.

A run directory holds:
  results.json   a JSON list of result objects, one per cell of the grid (CONTRACT.md fields plus
                 `status`, `error`, `cell`, fingerprints), rewritten atomically after each cell;
  cells/<cell>.json   one file per cell: its inputs fingerprint, result object and per-document NLLs;
  manifest.json  versions, git hash, device, seeds, sha256 of corpus and checkpoints, command line.

Every file is written atomically (temporary file in the same folder, fsync, os.replace, fsync of
the folder), so a kill at any moment leaves either the old or the new file, never half of one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

from robustbench_bytes.errors import BadInput
from robustbench_bytes.files import read_json, write_text_atomic

RESULTS_FILE = "results.json"
MANIFEST_FILE = "manifest.json"
CELLS_DIR = "cells"
CELL_FORMAT = "robustbench-cell/1"

DOCUMENT_FIELDS = ("index", "nll", "tokens", "bytes", "clean_bytes", "clean_words")


def _json_default(obj: Any):
    # numpy scalars and paths sneak into result objects; store them as plain JSON values.
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _finite_or_none(obj: Any) -> Any:
    """NaN/inf are not JSON; store them as null (the cell's status says why)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    return obj


def write_json_atomic(path: Path | str, obj: Any) -> None:
    """Write `obj` as JSON to `path` so that readers only ever see a complete file."""
    text = json.dumps(_finite_or_none(obj), indent=1, default=_json_default, allow_nan=False)
    write_text_atomic(path, text + "\n")


def cell_path(run_dir: Path | str, cell: str) -> Path:
    return Path(run_dir) / CELLS_DIR / f"{cell}.json"


def read_cell(run_dir: Path | str, cell: str) -> dict | None:
    """The stored cell record, or None when it is absent or unreadable (then it is recomputed)."""
    path = cell_path(run_dir, cell)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != CELL_FORMAT:
        return None
    return record


def write_cell(run_dir: Path | str, record: dict) -> None:
    write_json_atomic(cell_path(run_dir, record["cell"]), record)


def check_run_dir(run_dir: Path | str) -> Path:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BadInput(f"{run_dir}: no such run directory")
    if not (run_dir / RESULTS_FILE).is_file():
        raise BadInput(f"{run_dir}: not a run directory (no {RESULTS_FILE}; make one with `robustbench run`)")
    return run_dir


def read_results(run_dir: Path | str) -> list[dict]:
    """results.json of a run directory, checked to be a list of objects."""
    run_dir = check_run_dir(run_dir)
    path = run_dir / RESULTS_FILE
    data = read_json(path)
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise BadInput(f"{path}: expected a JSON list of result objects")
    for i, r in enumerate(data):
        for key in ("model", "noise"):
            if key not in r:
                raise BadInput(f"{path}: result {i} has no {key!r} field")
    return data


def read_manifest(run_dir: Path | str) -> dict:
    path = Path(run_dir) / MANIFEST_FILE
    if not path.is_file():
        return {}
    data = read_json(path)
    return data if isinstance(data, dict) else {}


def read_documents(run_dir: Path | str, result: dict) -> list[dict]:
    """Per-document NLLs of one finished cell, in document order."""
    cell = result.get("cell")
    if not cell:
        raise BadInput(f"{run_dir}: result for {result.get('model')} / {result.get('noise')} names no cell file")
    path = cell_path(run_dir, cell)
    record = read_json(path)
    docs = record.get("documents") if isinstance(record, dict) else None
    if not isinstance(docs, list):
        raise BadInput(f"{path}: expected a 'documents' list")
    for i, d in enumerate(docs):
        missing = [k for k in ("nll", "bytes", "clean_bytes", "clean_words") if k not in d]
        if missing:
            raise BadInput(f"{path}: document {i} lacks {', '.join(missing)}")
    return sorted(docs, key=lambda d: d.get("index", 0))


def is_ok(result: dict) -> bool:
    return result.get("status", "ok") == "ok" and result.get("nll") is not None


def load_runs(run_dirs: Iterable[Path | str] | Path | str):
    """Load one or more run directories into a pandas DataFrame: one row per cell, with a `run`
    column holding the run directory. Failed cells are kept (status "failed", metrics NaN)."""
    import pandas as pd

    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    rows = []
    for run_dir in run_dirs:
        for r in read_results(run_dir):
            row = dict(r)
            row.setdefault("status", "ok")
            row["run"] = str(run_dir)
            rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    first = ["run", "model", "noise", "seed", "corpus", "status"]
    return frame[[c for c in first if c in frame] + [c for c in frame if c not in first]]


def load_documents(run_dir: Path | str, result: dict):
    """Per-document NLLs of one cell as a pandas DataFrame."""
    import pandas as pd

    return pd.DataFrame(read_documents(run_dir, result))
