"""One error type for bad input: the CLI turns it into one line and exit code 2."""

import click


class BadInput(click.UsageError):
    """Bad user input (file, key, parameter, offset at fault). Exit code 2, no traceback."""

    exit_code = 2

    def show(self, file=None):
        click.echo(f"Error: {self.format_message()}", err=True)
