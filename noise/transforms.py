"""The noise transforms, each vectorised over a uint32 array of code points.

Every transform is `f(cps, rng, **params) -> cps`. Random draws are made for every position of the
input (not only the affected ones), so the stream layout is simple and documented next to each
function; p=0 returns the input without drawing.
"""

from __future__ import annotations

import numpy as np

from .codepoints import (SPACE, cased_table, char_map, line_break_table, map_chars, whitespace_table)
from .keyboard import neighbour_arrays


def _below(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    """n independent events of probability p: one uniform double per position, event iff u < p."""
    return rng.random(n) < p


def clean(cps, rng):
    return cps


def drop(cps, rng, p):
    if p == 0:
        return cps
    return cps[~_below(rng, len(cps), p)]


def repeat(cps, rng, p, max):  # noqa: A002  (the contract's parameter name)
    """Draws: a uniform per position, then k in 1..max for each selected position, left to right."""
    if p == 0:
        return cps
    selected = _below(rng, len(cps), p)
    counts = np.ones(len(cps), dtype=np.int64)
    counts[selected] += rng.integers(1, max, endpoint=True, size=int(selected.sum()))
    return np.repeat(cps, counts)


def antspeak(cps, rng):
    """Per line: ' ' + each non-whitespace character uppercased and followed by ' '; blank lines stay
    empty; line breaks (str.splitlines' set) are kept as they are. No randomness."""
    breaks = line_break_table()[cps]
    keep = ~whitespace_table()[cps] | breaks
    kept = cps[keep]
    is_break = breaks[keep]
    is_char = ~is_break
    upper, seg_len = map_chars(kept, [(is_char, char_map("upper"))])
    after_break = np.ones(len(kept), dtype=bool)
    after_break[1:] = is_break[:-1]
    first_in_line = is_char & after_break
    lengths = seg_len + first_in_line + is_char
    out = np.full(int(lengths.sum()), SPACE, dtype=np.uint32)
    seg_start = np.cumsum(lengths) - lengths + first_in_line
    seg_offset = np.cumsum(seg_len) - seg_len
    out[np.repeat(seg_start - seg_offset, seg_len) + np.arange(len(upper))] = upper
    return out


def uppercase(cps, rng, p):
    """As str.upper per character (ß -> SS). p=1 uppercases everything without drawing."""
    if p == 0:
        return cps
    selected = np.ones(len(cps), dtype=bool) if p >= 1 else _below(rng, len(cps), p)
    return map_chars(cps, [(selected, char_map("upper"))])[0]


def random_case(cps, rng):
    """Draws: one random bit per position (bits of rng.bytes, numpy's unpackbits order);
    1 -> str.upper, 0 -> str.lower, applied to cased characters only."""
    n = len(cps)
    bits = np.unpackbits(np.frombuffer(rng.bytes((n + 7) // 8), dtype=np.uint8), count=n).astype(bool)
    cased = cased_table()[cps]
    return map_chars(cps, [(cased & bits, char_map("upper")), (cased & ~bits, char_map("lower"))])[0]


def flip_case(cps, rng, p):
    """As str.swapcase per selected cased character."""
    if p == 0:
        return cps
    selected = _below(rng, len(cps), p) & cased_table()[cps]
    return map_chars(cps, [(selected, char_map("swapcase"))])[0]


def swap_positions(decisions: np.ndarray) -> np.ndarray:
    """Left-to-right rule, vectorised: pair (i, i+1) swaps iff decisions[i] and position i was not
    just swapped with i-1. In a run of True decisions that means every other pair from the run's start."""
    idx = np.arange(len(decisions))
    run_start = decisions.copy()
    run_start[1:] &= ~decisions[:-1]
    start_of_run = np.maximum.accumulate(np.where(run_start, idx, 0)) if len(idx) else idx
    return np.flatnonzero(decisions & ((idx - start_of_run) % 2 == 0))


def swap(cps, rng, p):
    """Draws: one uniform per adjacent pair (i, i+1), i = 0..n-2, whether or not the pair is eligible."""
    if p == 0 or len(cps) < 2:
        return cps
    left = swap_positions(_below(rng, len(cps) - 1, p))
    out = cps.copy()
    out[left] = cps[left + 1]
    out[left + 1] = cps[left]
    return out


def keyboard(cps, rng, p):
    """Draws: a uniform per position, then a neighbour index for each selected key, left to right."""
    if p == 0:
        return cps
    counts, choices = neighbour_arrays()
    n_neighbours = counts[np.minimum(cps, 127)]
    hit = np.flatnonzero(_below(rng, len(cps), p) & (n_neighbours > 0))
    out = cps.copy()
    out[hit] = choices[cps[hit], rng.integers(0, n_neighbours[hit])]
    return out


def insert(cps, rng, p):
    """Draws: a uniform per position, then a character in U+0020..U+007E for each selected one."""
    if p == 0:
        return cps
    selected = _below(rng, len(cps), p)
    counts = 1 + selected
    out = np.repeat(cps, counts)
    out[(np.cumsum(counts) - 1)[selected]] = rng.integers(0x20, 0x7F, size=int(selected.sum()), dtype=np.uint32)
    return out


def whitespace(cps, rng, p_del, p_ins):
    """Draws: a uniform per position for deletion (if p_del > 0), then one per position for insertion
    (if p_ins > 0)."""
    n = len(cps)
    is_space = cps == SPACE
    delete = is_space & _below(rng, n, p_del) if p_del > 0 else np.zeros(n, dtype=bool)
    insert_after = (~whitespace_table()[cps] & _below(rng, n, p_ins)) if p_ins > 0 else np.zeros(n, dtype=bool)
    if not delete.any() and not insert_after.any():
        return cps
    counts = (~delete).astype(np.int64) + insert_after
    out = np.repeat(cps, counts)
    out[(np.cumsum(counts) - 1)[insert_after]] = SPACE
    return out
