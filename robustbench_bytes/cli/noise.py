"""`robustbench noise list` and `robustbench noise apply`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from robustbench_bytes import noise as noise_lib
from robustbench_bytes.cli.common import ONE_NOISE_SPEC, InputError, read_stdin
from robustbench_bytes.data import decode_utf8, read_text
from robustbench_bytes.files import write_bytes_atomic


@click.group()
def noise():
    """Character noise: list the noises and presets, or apply one to a text."""


@noise.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the noises and presets as one JSON object.")
def list_noises(as_json: bool):
    """Every noise and preset, with its parameters and one-line definition."""
    if as_json:
        click.echo(json.dumps({
            "noises": [{"name": n.name, "origin": n.origin, "definition": n.definition,
                        "parameters": [{"name": p.name, "kind": p.kind, "default": p.default,
                                        "range": p.describe_range()} for p in n.params]}
                       for n in noise_lib.NOISES.values()],
            "presets": {name: specs for name, specs in noise_lib.PRESETS.items()},
        }, indent=2, ensure_ascii=False))
        return
    width = max(len(n.name) for n in noise_lib.NOISES.values())
    sig_width = max(len(n.signature()) for n in noise_lib.NOISES.values())
    click.echo("Noises (SPEC = name[:k=v,...]; A+B applies A then B; unit: Unicode code point):")
    for n in noise_lib.NOISES.values():
        extra = {"paper": "", "extra": " [beyond the paper]"}.get(n.origin, f" [{n.origin}]")
        click.echo(f"  {n.name:<{width}}  {n.signature():<{sig_width}}  {n.definition}{extra}")
    click.echo("")
    click.echo("Presets (a preset name expands to these specs):")
    pwidth = max(len(p) for p in noise_lib.PRESETS)
    for name, specs in noise_lib.PRESETS.items():
        click.echo(f"  {name:<{pwidth}}  {', '.join(specs)}")
        if noise_lib.PRESET_DESCRIPTIONS.get(name):
            click.echo(f"  {'':<{pwidth}}  ({noise_lib.PRESET_DESCRIPTIONS[name]})")


@noise.command("apply")
@click.option("--noise", "spec", required=True, type=ONE_NOISE_SPEC,
              help="The noise spec, e.g. drop:p=0.1 or antspeak or drop:p=0.1+uppercase (see `noise list`).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the random stream (with the spec and the document index).")
@click.option("--doc-index", type=click.IntRange(min=0), default=0, show_default=True,
              help="Index of this document in its corpus: selects its own random stream.")
@click.option("-o", "--output", default="-", metavar="OUTPUT",
              help="Where to write the noised text (written atomically); '-' or omitted: stdout.")
@click.option("--errors", type=click.Choice(["strict", "replace"]), default="strict", show_default=True,
              help="Input that is not UTF-8: 'strict' stops with the byte offset; 'replace' uses U+FFFD.")
@click.argument("input_path", metavar="[INPUT]", default="-", required=False)
def apply_noise(spec: str, seed: int, doc_index: int, output: str, errors: str, input_path: str):
    """Noise a UTF-8 text file (stdin by default) as one document and write it (stdout by default)."""
    if input_path == "-":
        text = decode_utf8(read_stdin(), "<stdin>", errors)
    else:
        text = read_text(Path(input_path), errors)
    data = noise_lib.apply(text, spec, seed=seed, doc_index=doc_index).encode("utf-8")
    if output == "-":
        out = sys.stdout.buffer
        out.write(data)
        out.flush()
        return
    if not output:
        raise InputError("-o/--output '': expected a file path or '-' for stdout")
    path = Path(output)
    if not path.parent.is_dir():
        raise InputError(f"-o/--output {output}: folder {path.parent} does not exist")
    write_bytes_atomic(path, data)
