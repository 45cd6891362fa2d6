"""The `robustbench` command line: a click group; each command lives in robustbench_bytes/commands/."""

import click

from robustbench_bytes import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="robustbench")
def cli():
    """Measure how language models degrade under synthetic character noise."""


def _register():
    from robustbench_bytes.commands import noise as noise_cmd

    cli.add_command(noise_cmd.noise)
    from robustbench_bytes.commands import corpora as corpora_cmd
    cli.add_command(corpora_cmd.corpora)
    from robustbench_bytes.commands import train as train_cmd
    cli.add_command(train_cmd.train)
    from robustbench_bytes.commands import score as score_cmd
    cli.add_command(score_cmd.score)
    from robustbench_bytes.commands import models as models_cmd
    cli.add_command(models_cmd.models)
    from robustbench_bytes.commands import run as run_cmd, report as report_cmd, compare as compare_cmd
    cli.add_command(run_cmd.run); cli.add_command(report_cmd.report); cli.add_command(compare_cmd.compare)


_register()


def main():
    cli(prog_name="robustbench")
