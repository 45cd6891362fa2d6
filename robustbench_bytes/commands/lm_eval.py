"""`robustbench lm-eval`: any lm-evaluation-harness task scored by our models under our seeded noise, one
lm-eval evaluation per (clean + noise) x seed, written into a run directory beside our results."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import click

from robustbench_bytes.commands.common import NOISE_SPEC, InputError

LM_EVAL_FILE = "lm_eval.json"
LM_EVAL_DIR = "lm_eval"


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
@click.option("--noise-choices", is_flag=True, help="Noise the continuations too, not only the contexts.")
@click.option("--include-path", type=click.Path(exists=True, file_okay=False), default=None,
              help="A folder of lm-eval task YAML files (e.g. a local task with dataset_path: json).")
@click.option("--only-include-path", is_flag=True,
              help="Index only the tasks under --include-path, not lm-eval's own thousands (starts faster).")
@click.option("--num-fewshot", type=click.IntRange(min=0), default=None, help="lm-eval's few-shot count.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Score only the first N documents a task.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/lm-eval"),
              help="Run directory: lm_eval.json and lm_eval/<cell>.json go there.")
@click.option("--device", default="auto", help="cpu, cuda, cuda:N or auto.")
@click.option("--dtype", type=click.Choice(["auto", "float32", "bfloat16"]), default="auto",
              help="auto: float32 on the CPU, bf16 autocast on CUDA.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, help="(context, continuation) pairs together.")
def lm_eval(model_spec, task_names, noises, suite, seeds, noise_choices, include_path, only_include_path,
            num_fewshot, limit, out, device, dtype, batch_size):
    """Score lm-evaluation-harness TASKs with MODEL, clean and under each noise (the tasks' inputs noised per
    document with our seeded streams). Each evaluation is stored as lm_eval/<cell>.json and listed in
    lm_eval.json; a rerun reuses evaluations whose model files, tasks, noise, seed and options match."""
    try:
        import lm_eval as harness
        from lm_eval.tasks import TaskManager
    except ImportError:
        raise InputError("robustbench lm-eval needs lm-evaluation-harness: pip install 'robustbench-bytes[lm-eval]'")
    from robustbench_bytes import results as results_io
    from robustbench_bytes import runs
    from robustbench_bytes.lm_eval_bridge import RobustbenchLM
    from robustbench_bytes.models import load_model, resolve_device, resolve_model

    tasks = [t for name in task_names for t in name.split(",") if t]
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
    model = None
    summary = []
    with runs.run_lock(out):
        if not (out / results_io.RESULTS_FILE).is_file():
            results_io.write_results(out, [])
        for spec in specs:
            for seed in ([0] if spec == "clean" else seeds):
                inputs = {"model": model_spec, "model_fingerprint": resolved.fingerprint(), "tasks": tasks,
                          "noise": spec, "seed": seed, "noise_choices": noise_choices and spec != "clean",
                          "num_fewshot": num_fewshot, "limit": limit, "dtype": dtype,
                          "lm_eval": getattr(harness, "__version__", None)}
                key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]
                path = out / LM_EVAL_DIR / f"{key}.json"
                stored = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
                if stored is None or stored.get("inputs") != inputs:
                    if model is None:
                        model = load_model(model_spec, resolve_device(device))
                    lm = RobustbenchLM(loaded=model, dtype=dtype, batch_size=batch_size, noise=spec, seed=seed,
                                       noise_choices=noise_choices)
                    got = harness.simple_evaluate(model=lm, tasks=tasks, num_fewshot=num_fewshot, limit=limit,
                                                  task_manager=manager, log_samples=False)
                    stored = {"inputs": inputs, "results": {t: _metrics(r) for t, r in got["results"].items()},
                              "versions": got.get("versions"), "n_samples": got.get("n-samples")}
                    results_io.write_json_atomic(path, stored)
                for task, metrics in stored["results"].items():
                    summary.append({"model": model_spec, "task": task, "noise": spec, "seed": seed,
                                    "noise_choices": inputs["noise_choices"], "cell": key, **metrics})
                    click.echo(f"{model_spec} | {task} | {spec} | seed {seed}: "
                               + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if "stderr" not in k),
                               err=True)
                results_io.write_json_atomic(out / LM_EVAL_FILE, summary)
    click.echo(json.dumps(summary, indent=1))
    sys.exit(0)
