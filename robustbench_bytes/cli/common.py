"""What the commands share: the one-line errors (bad input, exit 2; a failed run, exit 1), the exit code of
Ctrl-C, reading standard input, the noise-spec option type."""

from __future__ import annotations

import sys
from contextlib import contextmanager

import click

from robustbench_bytes.errors import printable

INTERRUPTED = 130


class InputError(click.ClickException):
    """Bad input shown as one line (`Error: ...`) with exit code 2."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(printable(message))


class FailedError(InputError):
    """A run that found a failure (errors.RunFailed) shown as one line with exit code 1."""

    exit_code = 1


@contextmanager
def resumable(kept: str):
    """Ctrl-C inside exits 130 (INTERRUPTED) after one line saying what was kept and how to go on."""
    try:
        yield
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted; {kept}", err=True)
        sys.exit(INTERRUPTED)


def read_stdin() -> bytes:
    """Everything on standard input; InputError when the process was started with it closed (`0<&-`)."""
    stream = sys.stdin
    if stream is None:
        raise InputError("standard input is closed; pipe the text in or name a file")
    try:
        return stream.buffer.read() if hasattr(stream, "buffer") else stream.read().encode("utf-8")
    except (OSError, ValueError) as e:  # a descriptor 0 that is closed or not readable
        raise InputError(f"standard input cannot be read ({getattr(e, 'strerror', None) or e})") from None


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses NaN (which compares false with both bounds and so passes it)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if number != number:
            self.fail(f"{value!r} is not a number; expected one in {self._describe_range()}", param, ctx)
        return number + 0.0  # -0.0 -> 0.0


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


def suite_option(command):
    """--suite PRESET: every preset of the noise registry is a choice, and the help names them."""
    from robustbench_bytes.noise import PRESETS

    return click.option("--suite", type=click.Choice(list(PRESETS)), default=None, metavar="PRESET",
                        help=f"A noise preset whose specs join the grid: {', '.join(PRESETS)} "
                             "(`robustbench noise list` shows each).")(command)


def device_option(command):
    return click.option("--device", default="auto", show_default=True, metavar="DEVICE",
                        help="Torch device: cpu, cuda, cuda:N, or auto (cuda when available, else cpu).")(command)


def quiet_option(help: str = "No progress bars or log lines on stderr."):
    return click.option("--quiet", "-q", is_flag=True, help=help)
