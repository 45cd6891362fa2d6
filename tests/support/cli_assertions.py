"""Assertions shared by the CLI tests (no tests here)."""


def assert_one_line_error(result, *needles, exit_code: int = 2):
    """The command failed with `exit_code`, printed exactly one line `Error: ...` holding every needle, and no
    traceback."""
    assert result.exit_code == exit_code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
