"""Helpers for the gate tests (no tests here): run directories with task cells (task-only or beside perplexity
cells), consistent rewrites of a fake run's documents, and edits of what a run directory stores."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from robustbench_bytes import results as results_io
from robustbench_bytes.results import tasks_io
from robustbench_bytes.results.schema import derived_metrics
from robustbench_bytes.results.task_schema import ItemRecord, TaskResult
from robustbench_bytes.results.resampled import accuracies


def write_task_run(out: Path, accuracy: dict[str, float], *, n: int = 200, seed: int = 0,
                   models=("m",), task_sha: str = "abc") -> Path:
    """Task cells as `robustbench run --task` stores them: per model and noise, `n` two-choice items of which a
    share accuracy[noise] are right (seeded draws), predictions the argmax of their log-likelihoods, accuracies
    and intervals as task scoring computes them. An empty results.json makes it a run directory when it holds no
    perplexity cells yet (as task runs do)."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    results = []
    for model in models:
        for noise, acc in accuracy.items():
            right = rng.random(n) < acc
            items = [ItemRecord(i, str(i), 0, [-1.0, -2.0] if r else [-2.0, -1.0], [3, 3], [3, 3], 0 if r else 1,
                                0 if r else 1) for i, r in enumerate(right)]
            result = TaskResult(task="t", task_spec="t", model=model, model_spec=model, noise=noise, seed=0, items=n,
                                task_sha256=task_sha, confidence=0.95, **accuracies(items, confidence=0.95))
            tasks_io.write_task_cell(out, tasks_io.TaskCellRecord({}, result, tuple(items)))
            results.append(result)
    tasks_io.write_task_results(out, results)
    if not (out / results_io.RESULTS_FILE).is_file():
        results_io.write_results(out, [])
    return out


def listed(run_dir: Path, file: str = results_io.RESULTS_FILE) -> list[dict]:
    return json.loads((Path(run_dir) / file).read_text())


def cell_file(run_dir: Path, entry: dict, folder: str = results_io.CELLS_DIR) -> Path:
    return Path(run_dir) / folder / f"{entry['cell']}.json"


def edit_listing(run_dir: Path, index: int, file: str = results_io.RESULTS_FILE, **fields) -> dict:
    """Sets fields of entry `index` of results.json (or tasks.json) and returns the entry as it was."""
    entries = listed(run_dir, file)
    before = dict(entries[index])
    entries[index].update(fields)
    (Path(run_dir) / file).write_text(json.dumps(entries))
    return before


def edit_json(path: Path, edit) -> None:
    raw = json.loads(path.read_text())
    edit(raw)
    path.write_text(json.dumps(raw))


def recompute(result: dict, docs: list[dict]) -> None:
    """A result's totals and derived metrics from its documents, as scoring computes them."""
    result.update(nll=math.fsum(d["nll"] for d in docs), bytes=sum(d["bytes"] for d in docs),
                  clean_bytes=sum(d["clean_bytes"] for d in docs), clean_words=sum(d["clean_words"] for d in docs),
                  tokens=sum(d["tokens"] for d in docs))
    values, undefined = derived_metrics(result["nll"], result["bytes"], result["clean_bytes"], result["clean_words"])
    result.update(values, undefined=undefined)


def rewrite_documents(run_dir: Path, edit) -> None:
    """Calls edit(noise, documents) on every ok cell's per-document records, then stores each cell's totals and
    derived metrics recomputed from them in both its cell file and results.json: a consistent run, as if scored
    so."""
    entries = listed(run_dir)
    for entry in entries:
        if entry["status"] != "ok":
            continue
        path = cell_file(run_dir, entry)
        raw = json.loads(path.read_text())
        edit(entry["noise"], raw["documents"])
        recompute(entry, raw["documents"])
        raw["result"] = entry
        path.write_text(json.dumps(raw))
    (Path(run_dir) / results_io.RESULTS_FILE).write_text(json.dumps(entries))
