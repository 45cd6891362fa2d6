"""`robustbench run`: score the grid models x (clean + noises) x seeds into a resumable run directory."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from robustbench_bytes.cli.common import NOISE_SPEC, InputError, device_option, quiet_option, resumable, suite_option
from robustbench_bytes.runs.distributed import DEFAULT_TIMEOUT_S
from robustbench_bytes.errors import BadInput


NOISE_TARGET_CHOICES = ("context", "completion", "both", "all")
# the options that apply to one kind of cell only: a run of the other kind refuses them when given
ONLY_FOR = {"perplexity": ("corpus", "limit_bytes", "limit_documents", "max_document_bytes", "max_length",
                           "rank_timeout"),
            "task": ("noise_targets", "noise_choices", "limit_items")}


def dtype_option(command):
    from robustbench_bytes.scoring.precision import DTYPES

    return click.option("--dtype", type=click.Choice(DTYPES), default="auto", show_default=True,
                        help="Scoring precision: float32, or bfloat16 / float16 autocast (float32 weights); auto: "
                             "float32 on the CPU, bfloat16 on CUDA. Part of each cell's fingerprint.")(command)


def rank_timeout_option(command):
    return click.option("--rank-timeout", type=click.FloatRange(min=1), default=DEFAULT_TIMEOUT_S,
                        show_default=True, metavar="SECONDS",
                        help="Under torchrun: how long a rank waits for another whose heartbeat has stopped "
                             "(it died or hangs) before the run stops with that rank's number.")(command)


def quick_look_options(command):
    """--limit-documents and --max-document-bytes: a quick look that keeps many documents (intervals need them)."""
    command = click.option("--max-document-bytes", type=click.IntRange(min=1), default=None, metavar="N",
                           help="Cut every document to its first N UTF-8 bytes (at a character boundary).")(command)
    return click.option("--limit-documents", type=click.IntRange(min=1), default=None, metavar="N",
                        help="Score only the first N documents (like lm-evaluation-harness's --limit).")(command)


@click.command("run")
@click.option("--model", "models", multiple=True, metavar="MODEL",
              help="Model to score (repeatable): a zoo name, a checkpoint directory or hf:PATH. "
                   "Default: every model of the built-in zoo.")
@click.option("--noise", "noises", multiple=True, type=NOISE_SPEC,
              help="Noise spec or preset name (repeatable), e.g. drop:p=0.1 or antspeak. Clean is always scored.")
@suite_option
@click.option("--corpus", metavar="CORPUS", default=None,
              help="Built-in corpus name, .txt file, directory of .txt files or .jsonl file. "
                   "Default: the built-in evaluation slice.")
@click.option("--seed", "seeds", multiple=True, type=click.IntRange(min=0), metavar="N",
              help="Noise seed (repeatable; default 0). Clean cells are scored once, recorded with seed 0.")
@click.option("--name", default="default", show_default=True,
              help="Run name: the run directory is runs/NAME unless --out is given.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run directory (created if missing; a rerun resumes it). Default: runs/NAME.")
@click.option("--limit-bytes", type=click.IntRange(min=1), default=None, metavar="N",
              help="Score only the first N bytes of the corpus (few documents: see --limit-documents).")
@quick_look_options
@device_option
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True,
              help="Documents scored together.")
@click.option("--max-length", type=click.IntRange(min=1), default=None, metavar="N",
              help="Windowed (Transformer) models: window length in tokens. Default: the model's context; "
                   "longer only for rotary-position (RoPE) hf: models. Streamed models ignore it.")
@dtype_option
@rank_timeout_option
@quiet_option("No progress bars or per-cell lines on stderr.")
@click.option("--task", "task_specs", multiple=True, metavar="NAME_OR_FILE",
              help="Score a multiple-choice task instead of the corpus (repeatable): a name from "
                   "`robustbench tasks` or a .jsonl file; results go to tasks.json in the run directory.")
@click.option("--noise-target", "noise_targets", multiple=True, type=click.Choice(NOISE_TARGET_CHOICES),
              help="With --task: what the noise changes (repeatable): the context (default), the completion (the "
                   "choices alone), both, or all three (BLT's protocol: --suite blt --noise-target all).")
@click.option("--noise-choices", is_flag=True, help="With --task: the same as --noise-target both.")
@click.option("--limit-items", type=click.IntRange(min=1), default=None, metavar="N",
              help="With --task: score only the first N items of each task.")
def run(models, noises, suite, corpus, seeds, name, out, limit_bytes, device, batch_size, max_length, dtype,
        rank_timeout, quiet, task_specs, noise_targets, noise_choices, limit_items, limit_documents,
        max_document_bytes):
    """Score models x (clean + each noise) x seeds; write results.json, per-document NLLs and
    manifest.json into the run directory. A rerun skips finished cells and recomputes cells whose
    inputs (checkpoint, corpus, noise, seed, scoring version) changed; results.json lists the cells
    of this grid, and cells of earlier grids in the directory are kept for reuse. Exit 1 if any
    cell failed. Under `torchrun --nproc-per-node N -m robustbench_bytes run ...` the same grid is split over
    N ranks by document and gives the same results (docs/scale.md)."""
    from robustbench_bytes import runs
    from robustbench_bytes.runs import distributed
    from robustbench_bytes.runs import grid as grid_lib
    from robustbench_bytes.data import load_corpus, require_text
    from robustbench_bytes.models import resolve_device, zoo_names

    if out is None:
        if not name or "/" in name or name in (".", ".."):
            raise InputError(f"--name {name!r}: expected a plain folder name")
        out = Path("runs") / name
    if distributed.launched_rank() == 0:  # rank 0 alone: the others would see its files appear
        grid_lib.check_out_dir(out)

    model_specs = list(models)
    if not model_specs:
        model_specs = list(zoo_names())
        if not model_specs:
            raise InputError("no --model given and the built-in zoo is empty")
    try:
        runs.check_model_specs(model_specs)
    except BadInput as e:
        raise click.BadParameter(str(e), param_hint="'--model'") from None

    refuse_options_of_the_other_kind(click.get_current_context(), "task" if task_specs else "perplexity")
    if task_specs:
        from robustbench_bytes.cli.tasks import run_task_grid
        from robustbench_bytes.runs.tasks import TaskCells

        world, device = grid_lib.open_world(TaskCells.shardable, device, "task cells (--task)")
        return run_task_grid(model_specs=model_specs, task_specs=list(task_specs),
                             noise_specs=runs.expand_noises(list(noises), suite), seeds=list(seeds) or [0], out=out,
                             device=resolve_device(device), batch_size=batch_size, dtype=dtype,
                             noise_targets=expand_noise_targets(noise_targets, noise_choices),
                             limit_items=limit_items, quiet=quiet, world=world)
    if corpus is None:
        from robustbench_bytes.data.builtin import DEFAULT_CORPUS

        corpus = DEFAULT_CORPUS
    loaded = require_text(load_corpus(corpus).quick_look(limit_documents, max_document_bytes, limit_bytes), corpus)

    noise_specs = runs.expand_noises(list(noises), suite)
    grid = runs.build_grid(model_specs, noise_specs, list(seeds) or [0])

    world, device = grid_lib.open_world(runs.PerplexityCells.shardable, device, "perplexity cells",
                                        timeout=rank_timeout)
    if world.distributed:  # the launcher stops the other ranks of a rank that died with SIGTERM: say how to go on
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        _run_grid(world, grid, loaded, model_specs, noise_specs, quiet, runs.RunOptions(
            out=out, device=resolve_device(device), batch_size=batch_size, limit_bytes=limit_bytes,
            limit_documents=limit_documents, max_document_bytes=max_document_bytes,
            max_length=max_length, dtype=dtype, world=world, progress=not quiet,
            log=(lambda message: click.echo(message, err=True)) if not quiet else None,
            command_line=["robustbench"] + sys.argv[1:]))
    finally:
        world.close()


def refuse_options_of_the_other_kind(ctx: click.Context, kind: str) -> None:
    """Every option either applies to the cells of this run or is refused with one line (never dropped)."""
    from click.core import ParameterSource

    flag = {p.name: p.opts[0] for p in ctx.command.params}
    for other, names in ONLY_FOR.items():
        given = [flag[n] for n in names if other != kind
                 and ctx.get_parameter_source(n) not in (None, ParameterSource.DEFAULT)]
        if given:
            what = "--task runs" if other == "task" else "perplexity runs (without --task)"
            raise InputError(f"{', '.join(given)}: applies to {what} only")


def expand_noise_targets(targets: tuple, noise_choices: bool) -> tuple:
    """--noise-target values (all: the three) and the --noise-choices flag (both) as NOISE_TARGETS, in order."""
    chosen = list(targets) + (["both"] if noise_choices else [])
    if "all" in chosen:
        chosen = ["context", "completion", "both"]
    return tuple(dict.fromkeys(chosen)) or ("context",)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _run_grid(world, grid, loaded, model_specs, noise_specs, quiet, options):
    """Execute the grid on this rank; rank 0 prints the summary; every rank exits 1 when a cell failed."""
    from robustbench_bytes import runs
    from robustbench_bytes.runs.distributed import DistributedError

    out = options.out
    show = not quiet and world.is_main
    if show:
        click.echo(f"{len(grid)} cells: {len(dict.fromkeys(model_specs))} model(s) x "
                   f"{1 + len(noise_specs)} noise setting(s) on {loaded.name} "
                   f"({len(loaded.documents)} documents, {loaded.bytes:,} bytes) -> {out}", err=True)
    try:
        with resumable(f"finished cells are kept in {out}: rerun the same command to resume"):
            outcome = runs.execute(grid, loaded, options)
    except DistributedError as e:  # a rank died or hangs: a failed run (exit 1), not bad input
        click.echo(f"Error: {e}; finished cells and shards are kept in {out}: rerun the same command to resume",
                   err=True)
        sys.exit(1)
    if not world.is_main:
        sys.exit(1 if outcome.failed else 0)
    from robustbench_bytes.report import summary_text

    click.echo(summary_text(out))
    click.echo(f"\n{outcome.scored} scored, {outcome.skipped} reused, {outcome.failed} failed; "
               f"results in {out / 'results.json'}")
    if outcome.failed:
        sys.exit(1)
