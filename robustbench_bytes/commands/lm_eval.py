"""`robustbench lm-eval`: any lm-evaluation-harness task scored by our models under our seeded noise, one
lm-eval evaluation per (clean + noise) x seed, written into a run directory beside our results."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import click

from robustbench_bytes.commands.common import NOISE_SPEC, InputError
from robustbench_bytes.commands.run import NOISE_TARGET_CHOICES, dtype_option, expand_noise_targets

LM_EVAL_FILE = "lm_eval.json"
LM_EVAL_DIR = "lm_eval"
LM_EVAL_FORMAT = "robustbench-lm-eval/1"  # lm_eval/manifest.json
LM_EVAL_CELL_FORMAT = "robustbench-lm-eval-cell/1"


def _metrics(task_results: dict) -> dict:
    """lm-eval's per-task numbers (`acc,none` -> acc), JSON-safe; its alias and sample counts dropped."""
    out = {}
    for key, value in task_results.items():
        if key == "alias" or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        name, _, filt = key.partition(",")
        out[name if filt in ("", "none") else f"{name},{filt}"] = value
    return out


@click.command("lm-eval", context_settings={"show_default": True})
@click.option("--model", "model_spec", required=True, metavar="MODEL",
              help="A zoo name, a checkpoint directory or hf:PATH.")
@click.option("--tasks", "task_names", required=True, multiple=True, metavar="TASK",
              help="lm-evaluation-harness task or group names (repeatable or comma-separated).")
@click.option("--noise", "noises", multiple=True, type=NOISE_SPEC,
              help="Noise spec or preset (repeatable); clean is always scored.")
@click.option("--suite", metavar="PRESET", default=None, help="A noise preset whose specs join the grid.")
@click.option("--seed", "seeds", multiple=True, type=click.IntRange(min=0), metavar="N", help="Noise seeds (default 0).")
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
@click.option("--device", default="auto", help="cpu, cuda, cuda:N or auto.")
@dtype_option
@click.option("--batch-size", type=click.IntRange(min=1), default=32, help="(context, continuation) pairs together.")
def lm_eval(model_spec, task_names, noises, suite, seeds, noise_targets, noise_choices, include_path,
            only_include_path, num_fewshot, limit, out, device, dtype, batch_size):
    """Score lm-evaluation-harness TASKs with MODEL, clean and under each noise (the tasks' inputs noised per
    document with our seeded streams). Each evaluation is stored as lm_eval/<cell>.json and listed in
    lm_eval.json; a rerun reuses evaluations whose model files, tasks, noise, seed and options match."""
    try:
        import lm_eval as harness
        from lm_eval.tasks import TaskManager
    except ImportError:
        raise InputError("robustbench lm-eval needs lm-evaluation-harness: pip install 'robustbench-bytes[lm-eval]'")
    from robustbench_bytes import grid, provenance, runs
    from robustbench_bytes import results as results_io
    from robustbench_bytes.lm_eval_bridge import RobustbenchLM
    from robustbench_bytes.models import load_model, resolve_device, resolve_model
    from robustbench_bytes.task_scoring import TASK_SCORING_VERSION

    tasks = list(dict.fromkeys(t.strip() for name in task_names for t in name.split(",") if t.strip()))
    if not tasks:
        raise click.BadParameter(f"{','.join(task_names)!r}: no task names", param_hint="'--tasks'")
    specs = ["clean"] + runs.expand_noises(list(noises), suite)
    seeds = list(dict.fromkeys(seeds)) or [0]
    runs.check_out_dir(out)
    resolved = resolve_model(model_spec)
    if only_include_path and not include_path:
        raise InputError("--only-include-path needs --include-path")
    manager = TaskManager(include_path=include_path, include_defaults=not only_include_path)
    missing = [t for t in tasks if t not in manager.all_tasks]
    if missing:
        raise click.BadParameter(f"{', '.join(missing)}: no such lm-eval task (see `lm_eval ls tasks`"
                                 f"{'' if include_path else ' or give --include-path'})", param_hint="'--tasks'")
    tasks_sha256 = _tasks_sha256(manager, tasks, include_path)
    model = None
    summary = []
    started = provenance.now()
    with runs.run_lock(out):
        grid.remove_stale_temporaries(out)
        cells = []

        def write_manifest(finished):
            results_io.write_json_atomic(out / LM_EVAL_DIR / results_io.MANIFEST_FILE, {
                "format": LM_EVAL_FORMAT, **provenance.software_record(), "device": provenance.device_description(
                    resolve_device(device)), "model": model_spec, "model_fingerprint": resolved.fingerprint(),
                "tasks": tasks, "tasks_sha256": tasks_sha256, "include_path": include_path, "noises": specs,
                "seeds": seeds, "cells": cells, "command_line": ["robustbench"] + sys.argv[1:],
                "started": started, "finished": finished})

        write_manifest(None)
        targets = expand_noise_targets(noise_targets, noise_choices)
        for spec, target, seed in [("clean", "context", 0)] + [(spec, target, seed) for target in targets
                                                                for spec in specs[1:] for seed in seeds]:
            inputs = {"model": model_spec, "model_fingerprint": resolved.fingerprint(), "tasks": tasks,
                      "noise": spec, "seed": seed, "noise_target": target,
                      "num_fewshot": num_fewshot, "limit": limit, "dtype": dtype,
                      "lm_eval": getattr(harness, "__version__", None), "tasks_sha256": tasks_sha256,
                      "scoring_version": TASK_SCORING_VERSION,
                      **({"noise_code_sha256": runs.noise_code_sha256(spec, seed)} if spec != "clean" else {})}
            key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]
            path = out / LM_EVAL_DIR / f"{key}.json"
            stored = _stored(path, inputs)
            if stored is None:
                if model is None:
                    model = load_model(model_spec, resolve_device(device))
                lm = RobustbenchLM(loaded=model, dtype=dtype, batch_size=batch_size, noise=spec, seed=seed,
                                   noise_target=target)
                got = _evaluate(harness, lm, tasks, num_fewshot, limit, manager, spec, seed)
                stored = {"format": LM_EVAL_CELL_FORMAT, "inputs": inputs,
                          "results": {t: _metrics(r) for t, r in got["results"].items()},
                          "versions": got.get("versions"), "n_samples": got.get("n-samples")}
                results_io.write_json_atomic(path, stored)
            cells.append(key)
            for task, metrics in stored["results"].items():
                summary.append({"model": model_spec, "task": task, "noise": spec, "seed": seed,
                                "noise_target": target, "cell": key, **metrics})
                click.echo(f"{model_spec} | {task} | {spec} ({target}) | seed {seed}: "
                           + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if "stderr" not in k),
                           err=True)
            results_io.write_json_atomic(out / LM_EVAL_FILE, summary)
            write_manifest(None)
        write_manifest(provenance.now())
    click.echo(json.dumps(summary, indent=1))
    sys.exit(0)


def _stored(path: Path, inputs: dict) -> dict | None:
    """A stored evaluation of these inputs whose results are task -> {metric: number}; None (evaluate again) for
    one that is absent, truncated, of other inputs or of another shape."""
    from robustbench_bytes import results as results_io

    raw = results_io.read_record(path, (LM_EVAL_CELL_FORMAT,))
    if raw is None or raw.get("inputs") != inputs or not isinstance(raw.get("results"), dict) or not raw["results"]:
        return None
    for metrics in raw["results"].values():
        if not isinstance(metrics, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                    for v in metrics.values()):
            return None
    return raw


def _evaluate(harness, lm, tasks, num_fewshot, limit, manager, spec, seed) -> dict:
    """lm-eval's simple_evaluate, its git lookup silenced (it runs `git describe` in the working directory and
    lets git print "fatal: not a git repository" outside one); what it raises becomes one line (exit 1)."""
    from unittest import mock

    from lm_eval import evaluator

    from robustbench_bytes.errors import RunFailed
    from robustbench_bytes.run_models import describe_error

    try:
        with mock.patch.object(evaluator, "get_git_commit_hash", _quiet_git_hash):
            return harness.simple_evaluate(model=lm, tasks=tasks, num_fewshot=num_fewshot, limit=limit,
                                           task_manager=manager, log_samples=False)
    except (KeyboardInterrupt, RunFailed):
        raise
    except Exception as e:
        raise RunFailed(f"lm-eval on {', '.join(tasks)} under {spec} (seed {seed}): {describe_error(e)}") from None


def _quiet_git_hash() -> str | None:
    import subprocess

    try:
        done = subprocess.run(["git", "describe", "--always"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


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
