"""`robustbench score`: one cell (a model on a corpus under one noise), as a summary or one JSON object."""

from __future__ import annotations

import sys
import click

from robustbench_bytes.cli.common import ONE_NOISE_SPEC, InputError, device_option, quiet_option
from robustbench_bytes.cli.run import dtype_option, quick_look_options, rank_timeout_option
from robustbench_bytes.results import json_text


def _summary(result) -> str:
    r = result

    def fmt(x, spec):
        if x is None:
            return "n/a"
        return format(x, ".4e") if abs(x) >= 1e7 else format(x, spec)

    lines = [
        f"model        {r.model}  ({r.level}, {r.architecture}, {r.parameters:,} parameters)",
        f"corpus       {r.corpus}  ({r.documents} documents, {r.clean_bytes:,} clean bytes, "
        f"{r.clean_words:,} words)",
        f"noise        {r.noise}  (seed {r.seed}; {r.bytes:,} bytes after noise)",
        f"tokens       {r.tokens:,}  (prefix: {r.prefix})",
        f"nll          {r.nll:.2f} nats",
        f"bits/byte    {fmt(r.bits_per_byte, '.4f')}  (per clean byte {fmt(r.bits_per_clean_byte, '.4f')})",
        f"word ppl     {fmt(r.word_perplexity, '.3f')}   byte ppl {fmt(r.byte_perplexity, '.4f')}",
        f"time         {r.seconds:.2f} s  ({fmt(r.bytes_per_second, ',.0f')} bytes/s on {r.device}, {r.dtype})",
    ]
    return "\n".join(lines)


@click.command("score")
@click.option("--model", "-m", "model_spec", required=True, metavar="MODEL",
              help="A zoo name (see `robustbench models`), a checkpoint directory, or hf:PATH.")
@click.option("--corpus", "-c", "corpus_spec", default=None, metavar="CORPUS",
              help="A built-in corpus (see `robustbench corpora`), a .txt file, a directory of .txt files or a "
                   ".jsonl file with a 'text' field. Default: the built-in default evaluation slice.")
@click.option("--noise", "-n", "noise_spec", default="clean", show_default=True, type=ONE_NOISE_SPEC,
              help="One noise spec, e.g. drop:p=0.1 or uppercase+swap:p=0.05 (see `robustbench noise list`).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Seed of the noise streams.")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON result object on stdout.")
@device_option
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1),
              help="Documents (streamed models) or windows (Transformers) per forward pass.")
@click.option("--chunk-size", default=None, type=click.IntRange(min=1),
              help="Streamed (Mamba) models: tokens per chunk; the state is carried between chunks. [1024]")
@click.option("--max-length", default=None, type=click.IntRange(min=1),
              help="Transformers: window length in tokens. Default: the model's context length.")
@click.option("--context", default=None, type=click.IntRange(min=1),
              help="Transformers: tokens each later window conditions on before its first scored token "
                   "(default 1: lm-evaluation-harness's disjoint windows).")
@click.option("--stride", default=None, type=click.IntRange(min=1),
              help="Transformers: tokens scored per later window (default: max length - context + 1).")
@click.option("--limit-bytes", default=None, type=click.IntRange(min=1),
              help="Score only the first documents up to this many clean UTF-8 bytes.")
@quick_look_options
@dtype_option
@rank_timeout_option
@quiet_option("No progress bar.")
def score(model_spec, corpus_spec, noise_spec, seed, as_json, device, batch_size, chunk_size, max_length,
          context, stride, limit_bytes, dtype, rank_timeout, quiet, limit_documents, max_document_bytes):
    """Score one cell: the negative log-likelihood MODEL gives CORPUS under one noise, with bits per byte
    and word perplexity (every byte of every document is scored). Under torchrun the documents are split
    over the ranks and rank 0 prints the one merged result."""
    from robustbench_bytes.runs import distributed
    from robustbench_bytes.runs import grid as grid_lib
    from robustbench_bytes.runs import PerplexityCells

    world, device = grid_lib.open_world(PerplexityCells.shardable, device, "perplexity cells", timeout=rank_timeout)
    try:
        _score(world, model_spec, corpus_spec, noise_spec, seed, as_json, device, batch_size, chunk_size,
               max_length, context, stride, (limit_documents, max_document_bytes, limit_bytes), dtype, quiet)
    except distributed.DistributedError as e:
        click.echo(f"Error: {e}", err=True)
        sys.exit(1)
    finally:
        world.close()


def _score(world, model_spec, corpus_spec, noise_spec, seed, as_json, device, batch_size, chunk_size, max_length,
           context, stride, quick_look, dtype, quiet):
    """A grid of one cell without a run directory (grid.execute with out None: nothing read or written)."""
    from robustbench_bytes.runs import grid as grid_lib
    from robustbench_bytes import scoring
    from robustbench_bytes.data import load_corpus, require_text
    from robustbench_bytes.runs.models import ModelCache, ModelUnavailable
    from robustbench_bytes.runs import Cell, PerplexityCells, RunOptions, scoring_kwargs

    if corpus_spec is None:
        from robustbench_bytes.data.builtin import DEFAULT_CORPUS

        corpus_spec = DEFAULT_CORPUS
    corpus = require_text(load_corpus(corpus_spec).quick_look(*quick_look), corpus_spec)
    models = ModelCache(device)
    try:
        model = models.get(model_spec)
    except ModelUnavailable as e:
        raise InputError(str(e)) from None
    windows = {"max_length": max_length, "context": context, "stride": stride}
    if model.streaming:
        given = [f"--{k.replace('_', '-')}" for k, v in windows.items() if v is not None]
        if given:
            raise InputError(f"{', '.join(given)}: only for windowed (Transformer) models; "
                             f"{model.name} is scored exactly in chunks (see --chunk-size)")
    elif chunk_size is not None:
        raise InputError(f"--chunk-size: only for streamed (Mamba) models; {model.name} is scored in windows")
    options = RunOptions(out=None, device=device, batch_size=batch_size, progress=not quiet, world=world,
                         dtype=dtype, chunk_size=chunk_size, **windows)
    scoring.scoring_options(model, **scoring_kwargs(options))  # bad options: one line, exit 2
    outcome = grid_lib.execute(PerplexityCells(corpus, options), [Cell(model_spec, noise_spec, seed)], options,
                               models=models)
    if not world.is_main:
        if outcome.failed:
            sys.exit(1)
        return
    result = outcome.results[0]
    if not result.ok:
        click.echo(f"Error: {result.error}", err=True)
        sys.exit(1)
    for metric, why in result.undefined.items():
        click.echo(f"note: {metric} is undefined: {why}", err=True)
    if as_json:
        click.echo(json_text(result.to_json(), indent=None))
    else:
        click.echo(_summary(result))
