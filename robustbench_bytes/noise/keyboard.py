"""QWERTY neighbours: the keys that touch a key on a US keyboard, from the staggered geometry."""

from __future__ import annotations

import functools

import numpy as np

# Rows of a US QWERTY keyboard and how far each row is shifted right, in key widths.
ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")
ROW_OFFSETS = (0.0, 0.5, 0.75, 1.25)


def neighbours() -> dict[str, str]:
    """key -> its neighbours: left and right on its row, and the keys of the rows above and below
    whose centres are less than one key width away. Upper-case letters get upper-case neighbours."""
    centres = {key: (r, ROW_OFFSETS[r] + i) for r, row in enumerate(ROWS) for i, key in enumerate(row)}
    table = {}
    for key, (r, x) in centres.items():
        near = [other for other, (r2, x2) in centres.items()
                if other != key and ((r2 == r and abs(x2 - x) == 1) or (abs(r2 - r) == 1 and abs(x2 - x) < 1))]
        table[key] = "".join(sorted(near))
    for key in list(table):
        if key.isalpha():
            table[key.upper()] = table[key].upper()
    return table


@functools.cache
def neighbour_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(counts uint8[128], choices uint32[128, K]): the neighbours of each ASCII code point."""
    table = neighbours()
    width = max(len(v) for v in table.values())
    counts = np.zeros(128, dtype=np.uint8)
    choices = np.zeros((128, width), dtype=np.uint32)
    for key, near in table.items():
        counts[ord(key)] = len(near)
        choices[ord(key), :len(near)] = [ord(c) for c in near]
    return counts, choices
