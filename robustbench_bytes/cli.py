"""The `robustbench` command line: a click group; each command lives in robustbench_bytes/commands/."""

import os

# torch and numba each bring an OpenMP runtime whose idle threads spin after every parallel region, on the
# cores the other runtime is about to use; passive waiting made chunked scoring 1.7x faster on a loaded
# 2-core machine (bench/results/model.md). Set before torch or numba are imported; a user's value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import click  # noqa: E402

from robustbench_bytes import __version__  # noqa: E402
from robustbench_bytes.commands import (  # noqa: E402
    compare, corpora, models, noise, report, run, score, train)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="robustbench")
def cli():
    """Measure how language models degrade under synthetic character noise."""


for _command in (noise.noise, score.score, run.run, report.report, compare.compare, models.models,
                 corpora.corpora, train.train):
    cli.add_command(_command)


def main():
    cli(prog_name="robustbench")
