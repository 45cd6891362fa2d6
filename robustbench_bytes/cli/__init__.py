"""The `robustbench` command line: a click group; each command is a module of this package (cli/run.py, ...).

This is the only place where the library's errors become exit codes: BadInput (and any other
RobustbenchError) and operating-system errors on the user's files are one line and exit 2; RunFailed (the work
itself failed, e.g. a NaN training loss) is one line and exit 1; Ctrl-C is exit 130 (a command that keeps its work
says what it kept: common.resumable). Everything below the commands raises plain exceptions and never imports click."""

import errno
import os
import sys

import click

from robustbench_bytes import __version__
from robustbench_bytes.cli import (
    compare, corpora, generate, lm_eval, models, noise, report, run, score, tasks, train)
from robustbench_bytes.cli.common import INTERRUPTED, FailedError, InputError
from robustbench_bytes.errors import RobustbenchError, RunFailed, first_line, printable


def describe_os_error(e: OSError) -> str:
    """One line naming the file and the fault of an OSError."""
    what = e.strerror or errno.errorcode.get(e.errno or 0) or type(e).__name__
    name = e.filename if e.filename is not None else None
    if name is None and isinstance(e, BrokenPipeError):
        return "standard output was closed before everything was written"
    return f"{name}: {what}" if name is not None else what


class RobustbenchGroup(click.Group):
    def parse_args(self, ctx, args):
        for arg in args:  # a file name of bytes that are not UTF-8 reaches Python as lone surrogates
            try:
                arg.encode("utf-8")
            except UnicodeEncodeError:
                raise InputError(f"argument '{printable(arg)}': not valid UTF-8 (a file or folder name of other "
                                 f"bytes?); expected UTF-8 text") from None
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        if sys.stdout is None:  # started with its standard output closed (`>&-`)
            raise InputError("standard output is closed; every command writes its result or summary there")
        try:
            return super().invoke(ctx)
        except InputError:
            raise
        except click.UsageError as e:  # one line, like every other bad input (no usage block)
            raise InputError(e.format_message()) from None
        except RunFailed as e:
            raise FailedError(str(e)) from None
        except RobustbenchError as e:
            raise InputError(str(e)) from None
        except UnicodeError as e:  # text that cannot be written as UTF-8 (a lone surrogate) or read as it
            raise InputError(f"text that is not valid Unicode: {first_line(e)}") from None
        except OSError as e:
            _quiet_stdout_after_broken_pipe(e)
            raise InputError(describe_os_error(e)) from None
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            ctx.exit(INTERRUPTED)


def _quiet_stdout_after_broken_pipe(e: OSError) -> None:
    # Python flushes stdout again at exit; with the reader gone that would print a second error
    if isinstance(e, BrokenPipeError) or e.errno in (errno.EPIPE,):
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass


@click.group(cls=RobustbenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="robustbench")
def cli():
    """Measure how language models degrade under synthetic character noise."""


for _command in (noise.noise, score.score, run.run, report.report, compare.compare, models.models,
                 corpora.corpora, train.train, generate.generate, tasks.tasks, lm_eval.lm_eval):
    cli.add_command(_command)


def main():
    cli(prog_name="robustbench")
