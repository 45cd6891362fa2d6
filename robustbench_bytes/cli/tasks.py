"""`robustbench tasks`: the named multiple-choice tasks; and the `robustbench run --task` branch (task grid)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from robustbench_bytes.cli.common import resumable
from robustbench_bytes.errors import BadInput


def describe_tasks() -> list[dict]:
    """One dict per registered task; a task that cannot be built (a corpus not downloaded, offline) is still
    listed, with the reason in `unavailable`."""
    from robustbench_bytes.tasks import TASKS, task_names

    rows = []
    for name in task_names():
        source = TASKS[name]
        row = {"name": name, "summary": source.summary, "items": None, "choices": None, "sha256": None}
        try:
            task = source.load()
        except BadInput as e:
            row["unavailable"] = str(e)
        else:
            row.update(items=len(task.items), choices=task.choices, sha256=task.sha256,
                       provenance=task.provenance, license=task.license)
        rows.append(row)
    return rows


@click.command("tasks")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of the table.")
def tasks(as_json):
    """List the named multiple-choice tasks (`robustbench run --task NAME`), with how the built-ins are
    made. A .jsonl file can be named instead: one item a line, {"context": ..., "choices": [...],
    "label": i} or HellaSwag's {"ctx": ..., "endings": [...], "label": i}."""
    from robustbench_bytes.tasks import builtin as tasks_builtin

    rows = describe_tasks()
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    width = max(len(r["name"]) for r in rows) if rows else 4
    for r in rows:
        size = f"{r['items']} items" if r["items"] is not None else f"unavailable: {r['unavailable']}"
        click.echo(f"{r['name'].ljust(width)}  {size}  {r['summary']}")
    rule = (tasks_builtin.__doc__ or "").split("\n\n", 1)[-1].strip()
    click.echo(f"\nHow the built-in tasks are made:\n{rule}\n\nScoring: each choice by the log-likelihood of "
               "its bytes given the context (after the model's prefix); acc = argmax of the sum, acc_norm = argmax "
               "of the sum / the choice's characters, acc_bytes = argmax of the sum / its UTF-8 bytes "
               "(lm-evaluation-harness's definitions). Noise goes on the context (item i is document i of the "
               "seeded streams); --noise-target completion noises the choices alone, both the two.")


def run_task_grid(*, model_specs, task_specs, noise_specs, seeds, out: Path, device: str, batch_size: int,
                  dtype: str, noise_targets: tuple, limit_items: int | None, quiet: bool, world=None) -> None:
    """`robustbench run --task ...`: score the task grid into `out`; exit 1 when a cell failed."""
    from dataclasses import replace

    from robustbench_bytes.runs.tasks import TaskRunOptions, build_task_grid, execute_tasks, format_task_summary
    from robustbench_bytes.tasks import resolve_task

    loaded = {}
    for spec in dict.fromkeys(task_specs):
        try:
            task = resolve_task(spec)
        except BadInput as e:
            raise click.BadParameter(str(e), param_hint="'--task'") from None
        if limit_items is not None:
            task = replace(task, items=task.items[:limit_items],
                           description=f"{task.description}; first {limit_items} items")
        loaded[spec] = task
    grid = build_task_grid(model_specs, list(loaded), noise_specs, seeds, noise_targets)
    show = not quiet
    options = TaskRunOptions(out=out, device=device, batch_size=batch_size, progress=show,
                             log=(lambda message: click.echo(message, err=True)) if show else None,
                             command_line=["robustbench"] + sys.argv[1:], noise_targets=noise_targets, dtype=dtype,
                             **({"world": world} if world is not None else {}))
    if show:
        names = ", ".join(f"{t.name} ({len(t.items)} items)" for t in loaded.values())
        click.echo(f"{len(grid)} task cells: {len(dict.fromkeys(model_specs))} model(s) x {names} x "
                   f"(1 + {len(noise_specs)} noise(s) x {len(noise_targets)} target(s)) -> {out}", err=True)
    with resumable(f"finished task cells are kept in {out}: rerun the same command to resume"):
        outcome = execute_tasks(grid, loaded, options)
    click.echo(format_task_summary(outcome.results, outcome.summary))
    click.echo(f"\n{outcome.scored} scored, {outcome.skipped} reused, {outcome.failed} failed; "
               f"results in {out / 'tasks.json'}")
    if outcome.failed:
        sys.exit(1)
