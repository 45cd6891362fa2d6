"""`robustbench lm-eval`: any lm-evaluation-harness task scored by our models under our seeded noise, one
lm-eval evaluation per (clean + noise) x seed, written into a run directory beside our results."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import click

from robustbench_bytes.cli.common import NOISE_SPEC, InputError, device_option, resumable, suite_option
from robustbench_bytes.cli.run import NOISE_TARGET_CHOICES, dtype_option, expand_noise_targets

@click.command("lm-eval", context_settings={"show_default": True})
@click.option("--model", "model_spec", required=True, metavar="MODEL",
              help="A zoo name, a checkpoint directory or hf:PATH.")
@click.option("--tasks", "task_names", required=True, multiple=True, metavar="TASK",
              help="lm-evaluation-harness task or group names (repeatable or comma-separated).")
@click.option("--noise", "noises", multiple=True, type=NOISE_SPEC,
              help="Noise spec or preset (repeatable); clean is always scored.")
@suite_option
@click.option("--seed", "seeds", multiple=True, type=click.IntRange(min=0), metavar="N",
              help="Noise seeds (default 0).")
@click.option("--noise-target", "noise_targets", multiple=True, type=click.Choice(NOISE_TARGET_CHOICES),
              help="What the noise changes (repeatable): the context (default), the completion (the continuations "
                   "alone), both, or all three.")
@click.option("--noise-choices", is_flag=True, help="The same as --noise-target both.")
@click.option("--include-path", type=click.Path(exists=True, file_okay=False), default=None,
              help="A folder of lm-eval task YAML files (e.g. a local task with dataset_path: json).")
@click.option("--only-include-path", is_flag=True,
              help="Index only the tasks under --include-path, not lm-eval's own thousands (starts faster).")
@click.option("--num-fewshot", type=click.IntRange(min=0), default=None, help="lm-eval's few-shot count.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Score only the first N documents a task.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/lm-eval"),
              help="Run directory: lm_eval.json and lm_eval/<cell>.json go there.")
@device_option
@dtype_option
@click.option("--batch-size", type=click.IntRange(min=1), default=32, help="(context, continuation) pairs together.")
def lm_eval(model_spec, task_names, noises, suite, seeds, noise_targets, noise_choices, include_path,
            only_include_path, num_fewshot, limit, out, device, dtype, batch_size):
    """Score lm-evaluation-harness TASKs with MODEL, clean and under each noise (the tasks' inputs noised per
    document with our seeded streams). Each evaluation is stored as lm_eval/<cell>.json and listed in
    lm_eval.json; a rerun reuses evaluations whose model files, tasks, noise, seed and options match."""
    try:
        from lm_eval.tasks import TaskManager
    except ImportError:
        raise InputError("robustbench lm-eval needs lm-evaluation-harness: pip install 'robustbench-bytes[lm-eval]'")
    from robustbench_bytes.runs import grid as grid_lib
    from robustbench_bytes import runs
    from robustbench_bytes.runs.lm_eval import LmEvalCells, LmEvalOptions, build_lm_eval_grid
    from robustbench_bytes.models import resolve_device, resolve_model

    tasks = list(dict.fromkeys(t.strip() for name in task_names for t in name.split(",") if t.strip()))
    if not tasks:
        raise click.BadParameter(f"{','.join(task_names)!r}: no task names", param_hint="'--tasks'")
    noise_specs = runs.expand_noises(list(noises), suite)
    grid_lib.check_out_dir(out)
    resolved = resolve_model(model_spec)
    if only_include_path and not include_path:
        raise InputError("--only-include-path needs --include-path")
    manager = TaskManager(include_path=include_path, include_defaults=not only_include_path)
    missing = [t for t in tasks if t not in manager.all_tasks]
    if missing:
        raise click.BadParameter(f"{', '.join(missing)}: no such lm-eval task (see `lm_eval ls tasks`"
                                 f"{'' if include_path else ' or give --include-path'})", param_hint="'--tasks'")
    world, device = grid_lib.open_world(LmEvalCells.shardable, device, "lm-eval cells")
    options = LmEvalOptions(out=out, device=resolve_device(device), batch_size=batch_size, dtype=dtype,
                            log=lambda message: click.echo(message, err=True),
                            command_line=["robustbench"] + sys.argv[1:], world=world, tasks=tasks,
                            tasks_sha256=_tasks_sha256(manager, tasks, include_path), include_path=include_path,
                            num_fewshot=num_fewshot, limit=limit, manager=manager)
    cells = build_lm_eval_grid(model_spec, resolved.fingerprint(), noise_specs, list(seeds),
                               expand_noise_targets(noise_targets, noise_choices), options)
    kind = LmEvalCells(options)
    with resumable(f"finished evaluations are kept in {out}: rerun the same command to resume"):
        outcome = grid_lib.execute(kind, cells, options)
    click.echo(json.dumps(kind.listing(outcome.records), indent=1))
    sys.exit(1 if outcome.failed else 0)


def _tasks_sha256(manager, tasks: list[str], include_path: str | None) -> str:
    """The sha256 of what defines the tasks beyond their names: every file under --include-path, each task's
    YAML file, and the local data files its configuration names (dataset_kwargs.data_files), by path and
    content. A task that lm-eval cannot load is one line (exit 2)."""
    from robustbench_bytes.errors import first_line

    files: set[Path] = set()
    if include_path:
        files |= {p for p in Path(include_path).rglob("*") if p.is_file()}
    for name in tasks:
        entry = manager.task_index.get(name)  # a dict or an Entry, by lm-eval's version
        yaml_path = entry.get("yaml_path") if isinstance(entry, dict) else getattr(entry, "yaml_path", None)
        if isinstance(yaml_path, (str, Path)) and Path(yaml_path).is_file():
            files.add(Path(yaml_path))
    try:
        if hasattr(manager, "load"):  # lm-eval 0.4.10+: {"tasks": {name: Task}, "groups": ..., "group_map": ...}
            loaded = manager.load(list(tasks)).get("tasks", {})
        else:
            from lm_eval.tasks import get_task_dict

            loaded = get_task_dict(tasks, manager)
    except Exception as e:
        raise InputError(f"--tasks {','.join(tasks)}: lm-eval cannot load them ({type(e).__name__}: "
                         f"{first_line(e)})") from None
    files |= _data_files(loaded)
    h = hashlib.sha256()
    for path in sorted(files, key=str):
        h.update(str(path.resolve()).encode("utf-8", "surrogateescape") + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _data_files(loaded) -> set[Path]:
    """The local files named by dataset_kwargs.data_files of every task in lm-eval's (nested) task dict."""
    found: set[Path] = set()
    for task in (loaded.values() if isinstance(loaded, dict) else [loaded]):
        if isinstance(task, dict):
            found |= _data_files(task)
            continue
        kwargs = getattr(getattr(task, "config", None), "dataset_kwargs", None) or {}
        named = kwargs.get("data_files") if isinstance(kwargs, dict) else None
        values = named.values() if isinstance(named, dict) else [named]
        for value in values:
            for item in (value if isinstance(value, (list, tuple)) else [value]):
                if isinstance(item, str) and Path(item).is_file():
                    found.add(Path(item))
    return found
