"""Options that several commands take mean and read the same everywhere: --suite offers every preset, --dtype one
vocabulary, --device the same default, --quiet its -q."""

from __future__ import annotations

import click

from robustbench_bytes.cli import cli
from robustbench_bytes.noise import PRESETS
from robustbench_bytes.scoring.precision import DTYPES


def every_command(group: click.Group = cli, prefix: str = "robustbench"):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from every_command(command, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}", command


def test_shared_options_have_one_vocabulary():
    seen = {"suite": 0, "dtype": 0, "device": 0, "quiet": 0}
    for name, command in every_command():
        for param in command.params:
            if param.name == "suite":
                assert list(param.type.choices) == list(PRESETS), name
                assert all(preset in param.help for preset in PRESETS), name
            elif param.name == "dtype":
                assert tuple(param.type.choices) == DTYPES and param.default == "auto", name
            elif param.name == "device":
                assert param.default == "auto", name
            elif param.name == "quiet":
                assert "-q" in param.opts, name
            else:
                continue
            seen[param.name] += 1
    assert seen["suite"] >= 2 and seen["dtype"] >= 3 and seen["device"] >= 4 and seen["quiet"] >= 4, seen
