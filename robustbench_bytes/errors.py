"""The library's exception types. Only the command layer (cli.py) turns them into click errors and exit codes."""


class RobustbenchError(Exception):
    """Base of every error the library raises on purpose; the message is one line naming the input at fault."""


class BadInput(RobustbenchError, ValueError):
    """Bad user input (a file, key, parameter or offset at fault, and what was expected): exit code 2."""


class NotComparable(BadInput):
    """Two runs (or cells) that cannot be compared: exit code 2 with the reason."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): the part a one-line error
    quotes of a library's longer message."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
