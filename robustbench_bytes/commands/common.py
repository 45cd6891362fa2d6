"""What the commands share: the one-line input error, the exit code of Ctrl-C, the noise-spec option type."""

from __future__ import annotations

import click

INTERRUPTED = 130


class InputError(click.ClickException):
    """Bad input shown as one line (`Error: ...`) with exit code 2."""

    exit_code = 2


class NoiseSpecType(click.ParamType):
    """A noise spec or preset name, converted to its canonical form (presets stay as named)."""

    name = "SPEC"

    def __init__(self, single: bool = False):
        self.single = single

    def convert(self, value, param, ctx):
        from robustbench_bytes import noise as noise_lib

        if value == "clean":
            return "clean"
        try:
            specs = noise_lib.expand(value)
        except noise_lib.NoiseSpecError as e:
            self.fail(str(e), param, ctx)
        if self.single:
            if len(specs) != 1:
                self.fail(f"{value!r} is a preset of {len(specs)} noises; this command scores one "
                          f"(`robustbench run --noise {value}` scores all of them)", param, ctx)
            return specs[0]
        return value


NOISE_SPEC = NoiseSpecType()
ONE_NOISE_SPEC = NoiseSpecType(single=True)
