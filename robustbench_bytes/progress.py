"""Progress bars: tqdm on stderr, drawn only when asked for and stderr is a terminal (quiet in CI logs)."""

from __future__ import annotations

import sys


def progress_bar(enabled: bool = True, **tqdm_options):
    """A tqdm bar; a disabled one (every call a no-op) when not enabled or stderr is not a TTY."""
    from tqdm import tqdm

    return tqdm(disable=not (enabled and sys.stderr.isatty()), file=sys.stderr, dynamic_ncols=True,
                **tqdm_options)
