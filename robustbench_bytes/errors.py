"""The library's exception types. Only the command layer (cli.py) turns them into click errors and exit codes."""


class RobustbenchError(Exception):
    """Base of every error the library raises on purpose; the message is one line naming the input at fault."""


class BadInput(RobustbenchError, ValueError):
    """Bad user input (a file, key, parameter or offset at fault, and what was expected): exit code 2."""


class NotComparable(BadInput):
    """Two runs (or cells) that cannot be compared: exit code 2 with the reason."""
