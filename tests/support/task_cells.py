"""Multiple-choice task inputs and results: a task JSONL file, and run directories holding task cells of given
accuracies."""

from __future__ import annotations

import json

import numpy as np

from robustbench_bytes.results import tasks_io
from robustbench_bytes.results.task_schema import ItemRecord, TaskResult
from robustbench_bytes.results.resampled import accuracies

def write_task(path, n=10, shift=0):
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"context": f"Verse {i + shift} says that the", "label": i % 3,
                                "choices": [" lamb", " lion is here", " end"]}) + "\n")
    return path


def write_owl_task(path, n=4):
    """A two-choice task of n items whose label alternates."""
    path.write_text("".join(json.dumps({"context": f"the owl {i}", "choices": [" sat", " flew"], "label": i % 2}) + "\n"
                            for i in range(n)), encoding="utf-8")
    return path


def write_task_cells(out, accuracy: dict[str, float], n=200, seed=0, model="m"):
    rng = np.random.default_rng(seed)
    results = []
    for noise, acc in accuracy.items():
        right = rng.random(n) < acc
        items = [ItemRecord(i, str(i), 0, [-1.0, -2.0] if r else [-2.0, -1.0], [3, 3], [3, 3], 0 if r else 1,
                            0 if r else 1) for i, r in enumerate(right)]
        result = TaskResult(task="t", task_spec="t", model=model, model_spec=model, noise=noise, seed=0, items=n,
                            task_sha256="abc", **accuracies(items))
        tasks_io.write_task_cell(out, tasks_io.TaskCellRecord({}, result, tuple(items)))
        results.append(result)
    tasks_io.write_task_results(out, results)
