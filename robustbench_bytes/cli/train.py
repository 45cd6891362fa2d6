"""`robustbench train`: train a zoo model from a config file (see configs/zoo/)."""

from __future__ import annotations

import shlex

import click

from robustbench_bytes.cli.common import quiet_option, resumable
from robustbench_bytes.formatting import format_measured_bits


@click.command("train")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Training config (JSON): model, tokenizer, data, steps, batch size, sequence length, "
                   "learning-rate schedule, seed. See configs/zoo/*.json.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Model directory to write (config.json, model.safetensors, tokenizer.json, MODEL_CARD.md); "
                   "checkpoints go to OUT/checkpoints/. A missing or empty folder, or one `train` wrote: "
                   "any other folder is refused, never written over.")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoints/last.pt if it exists.")
@quiet_option("No progress bar or log lines on stderr.")
def train(config_path: str, out: str, resume: bool, quiet: bool):
    """Train a small language model on the CPU, deterministically given the config's seed. Exit 1 when the
    training diverges (a loss or weight that is not finite): no model is written."""
    from robustbench_bytes.training import TrainConfig
    from robustbench_bytes.training import train as run_training

    cfg = TrainConfig.from_file(config_path)
    command = f"robustbench train --config {shlex.quote(config_path)} --out {shlex.quote(out)}"
    echo = (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))
    with resumable("the last checkpoint is kept: continue with --resume"):
        result = run_training(cfg, out, resume=resume, quiet=quiet, command=command, echo=echo)
    tests = ", ".join(f"{name} {format_measured_bits(v)}" for name, v in result.test_bpb.items()) or "n/a"
    click.echo(f"{cfg.name}: {result.steps} steps, {result.bytes_seen:,} bytes in {result.train_seconds / 60:.1f} min, "
               f"{result.parameters:,} parameters, validation {format_measured_bits(result.val_bpb)} bits/byte, "
               f"test bits/byte {tests} -> {result.out}")
