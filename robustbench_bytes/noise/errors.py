"""The one error type of the noise library."""

from robustbench_bytes.errors import BadInput


class NoiseSpecError(BadInput):
    """A noise spec that cannot be used: unknown noise or parameter, malformed, value out of range.
    The message is one line naming the spec and the fault; the CLI turns it into exit code 2."""
