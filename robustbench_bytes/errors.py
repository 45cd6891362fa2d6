"""The library's exception types. Only the command layer (cli.py) turns them into click errors and exit codes."""


class RobustbenchError(Exception):
    """Base of every error the library raises on purpose; the message is one line naming the input at fault."""


class BadInput(RobustbenchError, ValueError):
    """Bad user input (a file, key, parameter or offset at fault, and what was expected): exit code 2."""


class RunFailed(RobustbenchError):
    """The work itself failed, not its input (a training loss that became NaN, a model whose numbers are not
    finite): one line and exit code 1, the code of a run that found a failure."""


class NotComparable(BadInput):
    """Two runs (or cells) that cannot be compared: exit code 2 with the reason."""


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type's name when it has none), at most `limit`
    characters: the part a one-line error quotes of a library's longer message."""
    text = str(error).strip().splitlines()
    return text[0][:limit] if text else type(error).__name__


def printable(text: str) -> str:
    """`text` as it can be printed: a file name of bytes that are not UTF-8 (which Python holds as lone
    surrogates) shows those bytes as \\xNN, any other lone surrogate as \\uXXXX."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
